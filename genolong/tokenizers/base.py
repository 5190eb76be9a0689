"""Hugging Face integration of the genolong DNA tokenizers: one base class over ``PreTrainedTokenizer``.

Subclasses describe a vocabulary and a vectorised ``_encode_piece``; this class makes them full Hugging Face
tokenizers (``tokenizer(["ACGT", "AC"], padding=True, return_tensors="pt")``, ``save_pretrained``,
``AutoTokenizer.from_pretrained``: each subclass registers itself (:mod:`genolong.tokenizers.registration`))
while keeping every hot path on numpy:

- ``encode(seq)`` returns a numpy array of ids (dtype: the smallest of uint8/uint16/int32 that holds the
  vocabulary; pass ``dtype=np.int64`` for embeddings). With Hugging Face options (padding, truncation,
  ``return_tensors``, a text pair) it behaves like ``PreTrainedTokenizer.encode``.
- ``decode(ids)`` is vectorised and accepts lists, numpy arrays and torch tensors (2-D gives a list of
  strings).
- ``batch_encode(seqs)`` pads and truncates in numpy and returns a ``BatchEncoding`` of int64 arrays or
  tensors.

Special tokens: the vocabulary starts with ``[PAD] [UNK] [BOS] [EOS] [MASK]``. Which of them wrap a sequence
is ``special_tokens_pattern``: ``"none"`` (default: a window of L bases stays L tokens), ``"bos"``, ``"eos"``
or ``"bos_eos"``. Special tokens written inside the text (``"ACG[MASK]T"``) are recognised by the single-base
and k-mer tokenizers; k-mers never span them.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizer

from genolong.errors import InconsistentDataError
from genolong.tokenizers import vocab as V
from genolong.tokenizers.batching import BatchMixin
from genolong.tokenizers.coding import CodingMixin

PATTERNS = ("none", "bos", "eos", "bos_eos")
_SPECIAL_NAMES = ("pad_token", "unk_token", "bos_token", "eos_token", "mask_token")


def _smallest_dtype(n: int) -> np.dtype:
    return np.dtype(np.uint8 if n <= 256 else np.uint16 if n <= 65536 else np.int32)


class DNATokenizerBase(CodingMixin, BatchMixin, PreTrainedTokenizer):
    """Shared machinery; see the module docstring. Subclasses implement the four ``_``-hooks below."""

    vocab_files_names = {"vocab_file": "vocab.json"}
    model_input_names = ["input_ids", "attention_mask"]
    padding_side = "right"
    truncation_side = "right"
    encode_options: tuple[str, ...] = ("rna",)  # keyword options of encode, also accepted by __call__
    per_sequence_options: tuple[str, ...] = ()  # options that take one value per sequence in a batch
    specials_in_text = True  # whether "[MASK]" etc. written in the text are tokens

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        from genolong.tokenizers.registration import register

        register(cls)  # AutoTokenizer knows every genolong tokenizer class as soon as it is defined

    # ----- hooks -------------------------------------------------------------------------------------------
    def _build_tokens(self) -> list[str]:
        raise NotImplementedError

    def _token_contents(self) -> list[str]:
        """The bases each token decodes to, in id order (specials: their own text)."""
        raise NotImplementedError

    def _complement_ids(self) -> list[int]:
        raise NotImplementedError

    def _encode_piece(self, seq: str | bytes, *, rna: bool, positions: bool, **opts: Any):
        """(ids (T,), starts (T,) int64 or None) of a sequence without special tokens."""
        raise NotImplementedError

    # ----- construction ------------------------------------------------------------------------------------
    def __init__(
        self,
        *,
        soft_mask: str = "fold",
        iupac: str = "to_n",
        rna: bool = False,
        special_tokens_pattern: str = "none",
        vocab_file: str | None = None,
        **kwargs: Any,
    ):
        V.check_policies(soft_mask, iupac)
        if special_tokens_pattern not in PATTERNS:
            raise V.TokenizerUsageError(f"special_tokens_pattern must be one of {PATTERNS}")
        self.soft_mask, self.iupac, self.rna = soft_mask, iupac, bool(rna)
        self._tokens = self._build_tokens()
        self._vocab = {t: i for i, t in enumerate(self._tokens)}
        self.id_dtype = _smallest_dtype(len(self._tokens))
        self._setup_decoding()
        if vocab_file is not None:
            self._check_vocab_file(vocab_file)
        for name, token in zip(_SPECIAL_NAMES, V.SPECIAL_TOKENS, strict=True):
            if str(kwargs.setdefault(name, token)) != token:
                raise V.TokenizerUsageError(f"{name} is fixed to {token!r} in genolong tokenizers")
        super().__init__(soft_mask=soft_mask, iupac=iupac, rna=self.rna, **kwargs)
        self.special_tokens_pattern = special_tokens_pattern
        self.init_kwargs["special_tokens_pattern"] = special_tokens_pattern  # the base class pops it unsaved

    def _setup_decoding(self) -> None:
        contents = self._token_contents()
        pairs = list(zip(self._tokens, contents, strict=True))
        width = max(1, max(len(c) for t, c in pairs if t not in V.SPECIAL_TOKENS))
        self._content = np.zeros((len(contents), width), dtype=np.uint8)  # (V, W) letters
        self._content_len = np.zeros(len(contents), dtype=np.int64)  # (V,)
        self._is_special = np.zeros(len(contents), dtype=bool)  # (V,)
        for i, (token, text) in enumerate(pairs):
            if token in V.SPECIAL_TOKENS:
                self._is_special[i] = True
                continue
            self._content[i, : len(text)] = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
            self._content_len[i] = len(text)
        singles = bool((self._content_len[~self._is_special] == 1).all())
        self._translate_decode = width == 1 and singles and len(contents) <= 256
        if self._translate_decode:
            self._decode_table = bytes(self._content[:, 0].tolist()) + bytes(256 - len(contents))

    def _check_vocab_file(self, path: str) -> None:
        with open(path, encoding="utf-8") as fh:
            saved = json.load(fh)
        if saved != self._vocab:
            diff = next(
                (t for t in set(saved) | set(self._vocab) if saved.get(t) != self._vocab.get(t)), None
            )
            raise InconsistentDataError(
                f"vocabulary does not match these tokenizer settings: token {diff!r} has id "
                f"{saved.get(diff)} in the file but {self._vocab.get(diff)} here",
                path=path,
                hint="load it with the settings it was saved with (tokenizer_config.json)",
            )

    # ----- vocabulary plumbing required by PreTrainedTokenizer ---------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def _convert_token_to_id(self, token: str) -> int:
        if token not in self._vocab:
            raise V.TokenizerUsageError(
                f"unknown token {token!r} (genolong never maps tokens to [UNK] silently)"
            )
        return self._vocab[token]

    def _convert_id_to_token(self, index: int) -> str:
        return self._tokens[index]

    def _add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        unknown = [str(t) for t in new_tokens or [] if str(t) not in self._vocab]
        if unknown:
            raise V.TokenizerUsageError(f"genolong tokenizers have a fixed vocabulary; cannot add {unknown}")
        return super()._add_tokens(new_tokens, special_tokens=special_tokens)

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        ids, _ = self._encode_ids(text, rna=self.rna, positions=False, opts={})
        return [self._tokens[i] for i in ids.tolist()]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return self.decode([self._convert_token_to_id(t) for t in tokens])

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        def wrap(ids: list[int]) -> list[int]:
            bos = [V.BOS_ID] if self.special_tokens_pattern in ("bos", "bos_eos") else []
            eos = [V.EOS_ID] if self.special_tokens_pattern in ("eos", "bos_eos") else []
            return bos + list(ids) + eos

        return wrap(token_ids_0) + (wrap(token_ids_1) if token_ids_1 is not None else [])

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            return [int(self._is_special[i]) for i in [*token_ids_0, *(token_ids_1 or [])]]
        pair = None if token_ids_1 is None else [-1] * len(token_ids_1)
        return [
            0 if i == -1 else 1 for i in self.build_inputs_with_special_tokens([-1] * len(token_ids_0), pair)
        ]

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        name = (f"{filename_prefix}-" if filename_prefix else "") + self.vocab_files_names["vocab_file"]
        path = os.path.join(save_directory, name)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self._vocab, fh, indent=1)
            fh.write("\n")
        return (path,)
