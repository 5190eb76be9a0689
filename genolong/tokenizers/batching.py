"""Batches: numpy padding and truncation (``batch_encode``) and the Hugging Face ``__call__`` path.

``tokenizer(["ACGT", "AC"], padding=True, return_tensors="pt")`` goes through Hugging Face's
``prepare_for_model`` and ``pad`` (so every HF option behaves as documented there) but gets its ids from the
vectorised encoder, never from per-character Python. ``batch_encode`` is the lean path for data pipelines: one
(B, T) int64 array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import BatchEncoding
from transformers.tokenization_utils_base import PaddingStrategy, TruncationStrategy

from genolong.tokenizers import vocab as V

_TEXT = (str, bytes, bytearray)


def pad_token_rows(rows: list[np.ndarray], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of token ids (already encoded) as (input_ids, attention_mask), each (B, T) int64, right-padded."""
    ids = torch.full((len(rows), max((len(r) for r in rows), default=0)), pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = torch.as_tensor(np.asarray(row, dtype=np.int64)), 1
    return ids, mask


class BatchMixin:
    """``batch_encode`` and the ``_encode_plus`` override behind ``__call__``."""

    def batch_encode(
        self,
        sequences,
        *,
        padding: bool | str = True,
        truncation: bool = False,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        add_special_tokens: bool = True,
        return_tensors: str | None = "np",
        **opts: Any,
    ) -> BatchEncoding:
        """``input_ids`` and ``attention_mask``, each (B, T) int64 (numpy, ``"pt"`` torch, or None: lists).

        padding: True/"longest" pads to the longest row, "max_length" to ``max_length``, False leaves rows as
        they are (then equal lengths are needed for tensors). truncation: keep ``max_length`` tokens per row
        (special tokens included), cutting on ``self.truncation_side``. Options such as ``rna`` apply to every
        row; per-sequence options (the codon tokenizer's ``cds``) take a list with one entry per sequence.
        """
        single = isinstance(sequences, _TEXT)
        seqs = [sequences] if single else list(sequences)
        per_seq = {k: opts.pop(k) for k in self.per_sequence_options if k in opts}
        per_seq = {k: ([v] if single else v) for k, v in per_seq.items() if v is not None}
        for name, values in per_seq.items():
            if len(values) != len(seqs):
                raise V.TokenizerUsageError(f"{name} has {len(values)} entries for {len(seqs)} sequences")
        n_special = len(self._wrap(np.zeros(0, np.int64))) if add_special_tokens else 0
        rows = []
        for i, seq in enumerate(seqs):
            ids = self.encode(seq, add_special_tokens=False, **opts, **{k: v[i] for k, v in per_seq.items()})
            if truncation and max_length is not None and len(ids) + n_special > max_length:
                keep = max(max_length - n_special, 0)
                ids = ids[:keep] if self.truncation_side == "right" else ids[len(ids) - keep :]
            rows.append(self._wrap(ids) if add_special_tokens else ids)
        lengths = [len(r) for r in rows]
        if padding in (False, None, "do_not_pad"):
            if return_tensors is None:
                data = {"input_ids": [r.tolist() for r in rows], "attention_mask": [[1] * n for n in lengths]}
                return BatchEncoding(data)
            if len(set(lengths)) > 1:
                raise V.TokenizerUsageError("rows differ in length: pass padding=True to get tensors")
            width = lengths[0] if lengths else 0
        elif padding in (True, "longest"):
            width = max(lengths, default=0)
        elif padding == "max_length":
            if max_length is None or max(lengths, default=0) > max_length:
                raise V.TokenizerUsageError(
                    "padding='max_length' needs max_length >= every row (or truncation=True)"
                )
            width = max_length
        else:
            raise V.TokenizerUsageError(
                f"padding must be True, False, 'longest' or 'max_length', not {padding!r}"
            )
        if pad_to_multiple_of:
            width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
        input_ids = np.empty((len(rows), width), dtype=np.int64)  # (B, T)
        attention = np.empty((len(rows), width), dtype=np.int64)  # (B, T)
        for i, row in enumerate(rows):  # every element written once: no full-array fill passes
            pad = width - len(row)
            body, rest = (
                (slice(0, len(row)), slice(len(row), width))
                if self.padding_side == "right"
                else (slice(pad, width), slice(0, pad))
            )
            input_ids[i, body], input_ids[i, rest] = row, V.PAD_ID
            attention[i, body], attention[i, rest] = 1, 0
        data = {"input_ids": input_ids, "attention_mask": attention}
        if return_tensors is None:
            return BatchEncoding({k: v.tolist() for k, v in data.items()})
        if return_tensors == "pt":  # zero-copy; BatchEncoding would copy with torch.tensor
            import torch

            return BatchEncoding({k: torch.from_numpy(v) for k, v in data.items()})
        return BatchEncoding(data, tensor_type=return_tensors)

    def _encode_plus(
        self,
        text,
        text_pair=None,
        add_special_tokens: bool = True,
        padding_strategy: PaddingStrategy = PaddingStrategy.DO_NOT_PAD,
        truncation_strategy: TruncationStrategy = TruncationStrategy.DO_NOT_TRUNCATE,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors=None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        split_special_tokens: bool = False,
        **kwargs: Any,
    ) -> BatchEncoding:
        opts = self._take_options(kwargs)
        batched = isinstance(text, (list, tuple)) and all(isinstance(t, _TEXT) for t in text)
        if is_split_into_words or return_offsets_mapping or not (batched or isinstance(text, _TEXT)):
            if opts:
                raise V.TokenizerUsageError(f"{sorted(opts)} apply to str/bytes sequences only")
            return super()._encode_plus(
                text,
                text_pair,
                add_special_tokens,
                padding_strategy,
                truncation_strategy,
                max_length,
                stride,
                is_split_into_words,
                pad_to_multiple_of,
                padding_side,
                return_tensors,
                return_token_type_ids,
                return_attention_mask,
                return_overflowing_tokens,
                return_special_tokens_mask,
                return_offsets_mapping,
                return_length,
                verbose,
                split_special_tokens,
                **kwargs,
            )
        if kwargs:
            raise V.TokenizerUsageError(f"{type(self).__name__} got unknown option(s) {sorted(kwargs)}")
        texts = list(text) if batched else [text]
        if not texts:
            return BatchEncoding({"input_ids": [], "attention_mask": []}, tensor_type=return_tensors)
        pairs = (
            (list(text_pair) if batched else [text_pair]) if text_pair is not None else [None] * len(texts)
        )
        per_seq = {k: opts.pop(k) for k in self.per_sequence_options if k in opts}
        if not batched:
            per_seq = {k: [v] for k, v in per_seq.items()}
        if len(pairs) != len(texts) or any(len(v) != len(texts) for v in per_seq.values()):
            raise V.TokenizerUsageError("text_pair and per-sequence options need one entry per sequence")

        def ids_of(seq, i: int) -> list[int] | None:
            extra = {k: v[i] for k, v in per_seq.items()}
            return (
                None if seq is None else self.encode(seq, add_special_tokens=False, **opts, **extra).tolist()
            )

        common = dict(
            add_special_tokens=add_special_tokens,
            truncation=truncation_strategy.value,
            max_length=max_length,
            stride=stride,
            return_token_type_ids=return_token_type_ids,
            return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask,
            return_length=return_length,
            verbose=verbose,
        )
        if not batched:
            return self.prepare_for_model(
                ids_of(texts[0], 0),
                pair_ids=ids_of(pairs[0], 0),
                padding=padding_strategy.value,
                pad_to_multiple_of=pad_to_multiple_of,
                padding_side=padding_side,
                return_tensors=return_tensors,
                prepend_batch_axis=True,
                return_attention_mask=return_attention_mask,
                **common,
            )
        outputs: dict[str, list] = {}
        for i, (seq, pair) in enumerate(zip(texts, pairs, strict=True)):
            row = self.prepare_for_model(
                ids_of(seq, i), pair_ids=ids_of(pair, i), return_attention_mask=False, **common
            )
            for key, value in row.items():
                outputs.setdefault(key, []).append(value)
        if return_tensors and return_overflowing_tokens:
            outputs.pop("overflowing_tokens", None)
            outputs.pop("num_truncated_tokens", None)
        outputs = self.pad(
            outputs,
            padding=padding_strategy.value,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_attention_mask=return_attention_mask,
        )
        return BatchEncoding(outputs, tensor_type=return_tensors)
