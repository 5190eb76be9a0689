"""k-mer tokenizer: overlapping (stride < k) or non-overlapping (stride = k) k-mers with single-base fallback.

Vocabulary: the single-base vocabulary of :mod:`genolong.tokenizers.vocab` (10 tokens, or 20 with
``iupac="keep"``), then the 4^k k-mers over ACGT in lexicographic order (AA..A first, TT..T last), so
``id(kmer) = len(single-base vocabulary) + base-4 code`` with A=0 C=1 G=2 T=3.

The tokenization rule, one rule for every stride 1 <= s <= k:

- Step positions are p = 0, s, 2s, ... < L; step p *owns* the bases [p, p+s).
- If the window [p, p+k) lies inside the sequence and holds only A/C/G/T, step p is one k-mer token. Its first
  s bases are the ones it owns; the other k-s are context (shared with the next steps).
- Otherwise (a base that is N or another ambiguity code in the window, or the window runs past the end) step p
  is the single-base tokens of the bases it owns. Nothing ever becomes [UNK].

Decode writes, for each token, the bases it owns: a k-mer token its first s bases, a single-base token its
base. So ``decode(encode(s)) == normalize(s)`` exactly for every stride (normalize: see
:mod:`genolong.tokenizers.coding`); with s = k this is plain concatenation. For s < k the last k-s bases of
the sequence are single-base tokens (their k-mer would run past the end), and a sequence of length L gives
about L/s tokens. Context bases are not cross-checked on decode.

Reverse complement in token space (``reverse_complement_ids``) is offered for s = k only: reversing the tokens
and replacing each k-mer by its reverse-complement k-mer gives a token stream that decodes to the reverse
complement (it is not in general ``encode(reverse_complement(s))``, whose chunks start at the other end).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from genolong.tokenizers import vocab as V
from genolong.tokenizers.alphabet import COMPLEMENT
from genolong.tokenizers.base import DNATokenizerBase

MAX_K = 10  # 4^10 = 1,048,576 k-mer tokens


class KmerTokenizer(DNATokenizerBase):
    """k-mers with stride ``stride`` (default k: non-overlapping); rule in the module docstring."""

    def __init__(
        self,
        k: int = 6,
        stride: int | None = None,
        soft_mask: str = "fold",
        iupac: str = "to_n",
        rna: bool = False,
        special_tokens_pattern: str = "none",
        **kwargs: Any,
    ):
        stride = k if stride is None else stride
        if not (isinstance(k, int) and 2 <= k <= MAX_K):
            raise V.TokenizerUsageError(f"k must be an integer in 2..{MAX_K}, not {k!r}")
        if not (isinstance(stride, int) and 1 <= stride <= k):
            raise V.TokenizerUsageError(f"stride must be an integer in 1..k={k}, not {stride!r}")
        self.k, self.stride = k, stride
        super().__init__(
            k=k,
            stride=stride,
            soft_mask=soft_mask,
            iupac=iupac,
            rna=rna,
            special_tokens_pattern=special_tokens_pattern,
            **kwargs,
        )

    @property
    def kmer_offset(self) -> int:
        """Id of the first k-mer (AA..A)."""
        return len(V.single_base_tokens(self.iupac))

    def _build_tokens(self) -> list[str]:
        kmers = ("".join(p) for p in itertools.product("ACGT", repeat=self.k))
        return [*V.single_base_tokens(self.iupac), *kmers]

    def _token_contents(self) -> list[str]:
        off = self.kmer_offset
        return [t if i < off else t[: self.stride] for i, t in enumerate(self._tokens)]

    def _complement_ids(self) -> list[int]:
        off = self.kmer_offset
        singles = [self._vocab.get(COMPLEMENT.get(t, t), i) for i, t in enumerate(self._tokens[:off])]
        codes = np.arange(4**self.k, dtype=np.int64)
        rc = np.zeros_like(codes)
        for _ in range(self.k):  # peel the last base off, complement it, push it onto the front of the result
            rc = rc * 4 + (3 - codes % 4)
            codes //= 4
        return singles + (rc + off).tolist()

    def _check_reverse_complement(self) -> None:
        if self.stride != self.k:
            raise V.TokenizerUsageError(
                "token-space reverse complement needs non-overlapping k-mers (stride == k), "
                f"not stride={self.stride}"
            )

    def _encode_piece(self, seq, *, rna: bool, positions: bool, **opts: Any):
        base = V.encode_bases(seq, self.soft_mask, self.iupac, rna)  # (L,) uint8 single-base ids
        n, k, s = len(base), self.k, self.stride
        n_kmers = (n - k) // s + 1 if n >= k else 0  # steps whose window fits; later steps own the tail
        code = base - np.uint8(V.FIRST_BASE_ID)  # (L,) uint8: A0 C1 G2 T3, 4+ for N and ambiguity codes
        ok = code < 4  # (L,)
        np.bitwise_and(code, 3, out=code)
        kmer = np.zeros(n_kmers, dtype=np.uint16 if k <= 8 else np.uint32)  # (n_kmers,) base-4 codes
        clean = np.ones(n_kmers, dtype=bool)  # (n_kmers,) window holds only A/C/G/T
        for i in range(k if n_kmers else 0):  # in place, no temporaries: the hot loop of stride 1
            window = slice(i, i + s * (n_kmers - 1) + 1, s)
            np.left_shift(kmer, 2, out=kmer)
            np.bitwise_or(kmer, code[window], out=kmer, casting="unsafe")
            np.logical_and(clean, ok[window], out=clean)
        tail = base[n_kmers * s :]  # owned by steps whose k-mer would run past the end: single bases
        if clean.all():  # the common case: no N, so every fitting step is one k-mer token
            ids = np.empty(n_kmers + len(tail), dtype=self.id_dtype)
            np.add(kmer, self.kmer_offset, out=ids[:n_kmers], dtype=self.id_dtype, casting="unsafe")
            ids[n_kmers:] = tail
            if not positions:
                return ids, None
            return ids, np.concatenate([np.arange(n_kmers) * s, np.arange(n_kmers * s, n)])
        grid = base[: n_kmers * s].reshape(n_kmers, s).astype(np.int64)  # (n_kmers, s) owned bases
        grid[clean, 0] = self.kmer_offset + kmer[clean].astype(np.int64)
        grid[clean, 1:] = -1
        flat = np.concatenate([grid.reshape(-1), tail])
        keep = flat >= 0
        return flat[keep].astype(self.id_dtype), (np.flatnonzero(keep) if positions else None)
