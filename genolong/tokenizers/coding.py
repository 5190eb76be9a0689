"""Encode, decode, batch and reverse-complement in numpy: the methods every genolong tokenizer shares.

Mixed into :class:`genolong.tokenizers.base.DNATokenizerBase` ahead of ``PreTrainedTokenizer``, so ``encode``
and ``decode`` stay on vectorised paths and fall back to the Hugging Face versions only for Hugging Face
options. Round-trip rule for every tokenizer: ``decode(encode(s)) == normalize(s)``, where normalize
uppercases (``soft_mask="fold"``; pass ``soft_mask=`` the mask from ``encode(..., return_soft_mask=True)`` to
``decode`` to restore the case), turns ambiguity codes into N (``iupac="to_n"``) and U into T (RNA input;
``decode(rna=True)`` writes U again).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from genolong.tokenizers import vocab as V

_SPLIT_STR = re.compile("(" + "|".join(map(re.escape, V.SPECIAL_TOKENS)) + ")")  # keeps the specials
_SPLIT_BYTES = re.compile(_SPLIT_STR.pattern.encode())


class CodingMixin:
    """encode / encode_with_positions / decode / reverse complement (see the module docstring)."""

    # ----- encoding ----------------------------------------------------------------------------------------
    def _take_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {k: kwargs.pop(k) for k in list(kwargs) if k in self.encode_options}

    def _encode_ids(self, text, *, rna: bool | None, positions: bool, opts: dict[str, Any]):
        """(ids (T,), starts (T,) int64 or None) of one text, special tokens in the text included."""
        if not isinstance(text, (str, bytes, bytearray)):
            raise V.TokenizerUsageError(f"a sequence must be str or bytes, not {type(text).__name__}")
        unknown = set(opts) - set(self.encode_options)
        if unknown:
            raise V.TokenizerUsageError(f"{type(self).__name__} has no encode option(s) {sorted(unknown)}")
        rna = self.rna if rna is None else bool(rna)
        marker = "[" if isinstance(text, str) else b"["
        if not self.specials_in_text or marker not in text:
            return self._encode_piece(text, rna=rna, positions=positions, **opts)
        parts = (_SPLIT_STR if isinstance(text, str) else _SPLIT_BYTES).split(text)  # odd entries: specials
        ids, starts, text_at, base_at = [], [], 0, 0
        for j, part in enumerate(parts):
            if j % 2:
                ids.append(np.array([self._vocab[part if isinstance(part, str) else part.decode()]]))
                starts.append(np.array([-1]))
            elif part:
                try:
                    piece_ids, piece_starts = self._encode_piece(part, rna=rna, positions=positions, **opts)
                except V.InvalidSequenceError as err:
                    raise err.shifted(text_at) from None
                ids.append(piece_ids)
                starts.append(piece_starts + base_at if positions else None)
                base_at += len(part)
            text_at += len(part)
        out = np.concatenate(ids).astype(self.id_dtype) if ids else np.zeros(0, self.id_dtype)
        return out, (np.concatenate(starts) if positions and starts else None)

    def _wrap(self, ids: np.ndarray, fill: int | None = None) -> np.ndarray:
        head = [V.BOS_ID] if self.special_tokens_pattern in ("bos", "bos_eos") else []
        tail = [V.EOS_ID] if self.special_tokens_pattern in ("eos", "bos_eos") else []
        if not head and not tail:
            return ids
        head, tail = ([fill] * len(head), [fill] * len(tail)) if fill is not None else (head, tail)
        return np.concatenate([np.array(head, ids.dtype), ids, np.array(tail, ids.dtype)])

    def _soft_mask_for(self, text) -> np.ndarray:
        if self.specials_in_text and ("[" if isinstance(text, str) else b"[") in text:
            text = (_SPLIT_STR if isinstance(text, str) else _SPLIT_BYTES).sub(text[:0], text)
        return V.soft_mask_of(text)

    def encode(
        self,
        text,
        text_pair=None,
        add_special_tokens: bool = True,
        padding=False,
        truncation=None,
        max_length: int | None = None,
        stride: int = 0,
        padding_side: str | None = None,
        return_tensors=None,
        *,
        return_soft_mask: bool = False,
        dtype=None,
        **kwargs: Any,
    ):
        """Ids of one sequence, a numpy array (T,); with ``return_soft_mask``, ``(ids, soft_mask (L,) bool)``.

        Options: ``rna=True`` reads U as T (default: the tokenizer's ``rna``); the codon tokenizer takes
        ``cds=``. With Hugging Face options (padding, truncation, max_length, return_tensors, text_pair) this
        is ``PreTrainedTokenizer.encode``.
        """
        opts = self._take_options(kwargs)
        hf = (
            text_pair is not None
            or padding not in (False, None, "do_not_pad")
            or truncation not in (None, False, "do_not_truncate")
            or max_length is not None
            or return_tensors is not None
            or bool(kwargs)
            or not isinstance(text, (str, bytes, bytearray))
        )
        if hf:
            if return_soft_mask or dtype is not None:
                raise V.TokenizerUsageError(
                    "return_soft_mask and dtype apply to one sequence without HF options"
                )
            return super().encode(
                text,
                text_pair,
                add_special_tokens,
                padding,
                truncation,
                max_length,
                stride,
                padding_side,
                return_tensors,
                **opts,
                **kwargs,
            )
        rna = opts.pop("rna", None)
        ids, _ = self._encode_ids(text, rna=rna, positions=False, opts=opts)
        if add_special_tokens:
            ids = self._wrap(ids)
        ids = ids.astype(dtype or self.id_dtype, copy=False)
        return (ids, self._soft_mask_for(text)) if return_soft_mask else ids

    def tokenize(self, text, **kwargs: Any) -> list[str]:
        """Token strings of one sequence; takes ``encode``'s options (``rna=``, the codon tokenizer's ``cds=``),
        which ``PreTrainedTokenizer.tokenize`` would drop."""
        opts = self._take_options(kwargs)
        if not opts:
            return super().tokenize(text, **kwargs)
        if kwargs:
            raise V.TokenizerUsageError(f"{type(self).__name__}.tokenize got unknown option(s) {sorted(kwargs)}")
        rna = opts.pop("rna", None)
        ids, _ = self._encode_ids(text, rna=rna, positions=False, opts=opts)
        return [self._tokens[i] for i in ids.tolist()]

    def encode_with_positions(self, text, *, add_special_tokens: bool = False, **opts: Any):
        """``(ids (T,), starts (T,) int64)``: the 0-based sequence position where each token's bases start.

        Special tokens (added or written in the text) have start -1; positions count bases only.
        """
        rna = opts.pop("rna", None)
        ids, starts = self._encode_ids(text, rna=rna, positions=True, opts=opts)
        if add_special_tokens:
            ids, starts = self._wrap(ids), self._wrap(starts, fill=-1)
        return ids.astype(self.id_dtype, copy=False), starts

    # ----- decoding ----------------------------------------------------------------------------------------
    def decode(
        self, token_ids, skip_special_tokens: bool = False, *, soft_mask=None, rna=None, **kwargs: Any
    ):
        """Sequence of ids (list, numpy, torch; 2-D or a list of lists gives a list of strings)."""
        if hasattr(token_ids, "detach"):
            token_ids = token_ids.detach().cpu().numpy()
        if isinstance(token_ids, (list, tuple)) and token_ids and not np.isscalar(token_ids[0]):
            masks = soft_mask if soft_mask is not None else [None] * len(token_ids)
            return [
                self.decode(row, skip_special_tokens, soft_mask=m, rna=rna)
                for row, m in zip(token_ids, masks, strict=True)
            ]
        arr = np.asarray(token_ids)
        if arr.ndim == 2:
            return self.decode(list(arr), skip_special_tokens, soft_mask=soft_mask, rna=rna)
        return self._decode_array(arr.reshape(-1), skip_special_tokens, soft_mask, rna)

    def _decode(
        self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs
    ):
        return self._decode_array(np.asarray(token_ids).reshape(-1), skip_special_tokens, None, None)

    def _decode_array(self, ids: np.ndarray, skip_special: bool, soft_mask, rna) -> str:
        if ids.dtype.kind not in "iu":
            ids = ids.astype(np.int64)
        lo, hi = (int(ids.min()), int(ids.max())) if ids.size else (V.FIRST_BASE_ID, 0)
        if lo < 0 or hi >= len(self._tokens):
            at = int(np.flatnonzero((ids < 0) | (ids >= len(self._tokens)))[0])
            raise V.TokenizerUsageError(
                f"token id {int(ids[at])} at index {at} is outside the vocabulary "
                f"of {len(self._tokens)} tokens"
            )
        special = ids < V.FIRST_BASE_ID if lo < V.FIRST_BASE_ID else None  # (T,) specials are ids 0..4
        content_ids = ids if special is None else ids[~special]
        if self._translate_decode:  # one letter per token: a byte table, like encode
            letters = V.translate_array(content_ids.astype(np.uint8, copy=False), self._decode_table)
        else:
            rows = self._content[content_ids]  # (T', W) letters, padded with zeros
            lengths = self._content_len[content_ids]  # (T',)
            full = lengths.size == 0 or int(lengths.min()) == rows.shape[1]
            letters = rows.reshape(-1) if full else rows[np.arange(rows.shape[1]) < lengths[:, None]]
        if rna if rna is not None else self.rna:
            letters[letters == ord("T")] = ord("U")
        if soft_mask is not None:
            soft_mask = np.asarray(soft_mask, dtype=bool).reshape(-1)
            if soft_mask.shape != letters.shape:
                raise V.TokenizerUsageError(
                    f"soft_mask has {soft_mask.size} entries for {letters.size} bases"
                )
            letters[soft_mask] |= 0x20  # ASCII lowercase
        text = str(memoryview(letters), "ascii")
        if skip_special or special is None or not special.any():
            return text
        base_ends = np.cumsum(np.where(special, 0, self._content_len[ids]))  # bases decoded through token i
        out, prev = [], 0
        for idx in np.flatnonzero(special):  # few in practice: wrapping tokens, masks, padding
            end = int(base_ends[idx])
            out += [text[prev:end], self._tokens[ids[idx]]]
            prev = end
        out.append(text[prev:])
        return "".join(out)

    # ----- reverse complement in token space ---------------------------------------------------------------
    def complement_token_ids(self) -> list[int]:
        """Entry i: id of the token whose bases are the reverse complement of token i's (specials: i)."""
        return list(self._complement_ids())

    def reverse_complement_ids(self, ids):
        """Reverse complement of ids along the last axis (list, numpy array or torch tensor; any leading
        dims).

        The whole row is reversed, special tokens included (they map to themselves): strip or re-add wrapping
        [BOS]/[EOS] and padding yourself. ``decode(reverse_complement_ids(ids)) ==
        reverse_complement(decode(ids))``.
        """
        self._check_reverse_complement()
        table = np.asarray(self._complement_ids(), dtype=np.int64)  # (V,)
        if hasattr(ids, "flip"):  # torch tensor: stay on its device
            import torch

            return torch.as_tensor(table, device=ids.device)[ids.flip(-1).long()].to(ids.dtype)
        arr = np.asarray(ids)
        out = table[arr[..., ::-1]].astype(arr.dtype if arr.dtype.kind in "iu" else np.int64)
        return out.tolist() if isinstance(ids, (list, tuple)) else out

    def _check_reverse_complement(self) -> None:
        """Raise where token-space reverse complement is not meaningful (overlapping k-mers)."""
