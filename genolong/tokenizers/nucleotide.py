"""Single-base tokenizer: one token per base, the vocabulary every genolong model at base resolution uses.

Vocabulary (fixed; other parts of genolong rely on it)::

    [PAD]=0 [UNK]=1 [BOS]=2 [EOS]=3 [MASK]=4 A=5 C=6 G=7 T=8 N=9
    iupac="keep" adds R=10 Y=11 S=12 W=13 K=14 M=15 B=16 D=17 H=18 V=19

>>> tok = NucleotideTokenizer()
>>> tok.encode("ACGTn").tolist()
[5, 6, 7, 8, 9]
>>> ids, mask = tok.encode("ACgt", return_soft_mask=True)
>>> tok.decode(ids), tok.decode(ids, soft_mask=mask)
('ACGT', 'ACgt')
>>> tok.decode(tok.reverse_complement_ids(tok.encode("AACG")))
'CGTT'

``encode`` returns a uint8 array (one byte per base: a 1 Mbp window is 1 MB); ``encode(seq, dtype=np.int64)``
or ``torch.as_tensor(ids).long()`` for an embedding. Policies (``soft_mask``, ``iupac``, ``rna``) are
described in :mod:`genolong.tokenizers.vocab`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genolong.tokenizers import vocab as V
from genolong.tokenizers.alphabet import COMPLEMENT
from genolong.tokenizers.base import DNATokenizerBase


class NucleotideTokenizer(DNATokenizerBase):
    """One token per base over the IUPAC alphabet.

    Args:
        soft_mask: ``"fold"`` (lowercase read as uppercase; mask available from ``encode``) or ``"error"``.
        iupac: ``"to_n"`` (ambiguity codes -> N), ``"keep"`` (own ids 10..19) or ``"error"``.
        rna: read U as T by default (each call can also pass ``rna=``).
        special_tokens_pattern: ``"none"``, ``"bos"``, ``"eos"`` or ``"bos_eos"`` around each sequence.
    """

    def __init__(
        self,
        soft_mask: str = "fold",
        iupac: str = "to_n",
        rna: bool = False,
        special_tokens_pattern: str = "none",
        **kwargs: Any,
    ):
        super().__init__(
            soft_mask=soft_mask, iupac=iupac, rna=rna, special_tokens_pattern=special_tokens_pattern, **kwargs
        )

    def _build_tokens(self) -> list[str]:
        return V.single_base_tokens(self.iupac)

    def _token_contents(self) -> list[str]:
        return list(self._tokens)

    def _complement_ids(self) -> list[int]:
        return [self._vocab.get(COMPLEMENT.get(t, t), i) for i, t in enumerate(self._tokens)]

    def _encode_piece(self, seq, *, rna: bool, positions: bool, **opts: Any):
        ids = V.encode_bases(seq, self.soft_mask, self.iupac, rna)  # (L,) uint8
        return ids, (np.arange(len(ids), dtype=np.int64) if positions else None)
