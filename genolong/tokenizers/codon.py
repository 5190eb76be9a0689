"""Codon tokenizer: codons inside annotated CDS, single bases elsewhere, with the frame never lost.

Vocabulary: the single-base vocabulary (10 tokens, or 20 with ``iupac="keep"``), then ``[UNK_CODON]``, then
the 64 plus-strand codons ``AAA..TTT`` in lexicographic order, then the 64 minus-strand codons ``-AAA..-TTT``.

The token stream follows the forward strand of the window. Rules:

- ``cds`` lists CDS segments (:class:`genolong.tokenizers.cds.CdsSegment`) in window coordinates (0-based,
  half-open; they may run past either end of the window, the frame still counts from the segment's own
  start/end), each with a strand and a GFF3 phase (bases to skip from the segment's 5' end: from ``start`` on
  +, from ``end`` on -). A spliced CDS is simply several segments, each with its phase; a codon split by an
  intron is written as single bases.
- Plus strand: codons start at ``start + phase + 3j`` and are the token of that codon.
- Minus strand: codons occupy ``[end - phase - 3(j+1), end - phase - 3j)``; the token is ``-XYZ`` where XYZ is
  the codon read on the minus strand (the reverse complement of the forward bases); it sits at the codon's
  forward position. Decode writes the forward bases back. Read minus-strand codon tokens right to left to get
  the protein.
- A codon with any base other than A/C/G/T (N, or an ambiguity code) is written ``[UNK_CODON] b1 b2 b3``: the
  marker holds the codon slot (codon tokens plus markers count the codons, so the frame stays visible) and the
  three single-base tokens keep the bases, so decode (which writes nothing for the marker) is exact.
- Bases not in a complete codon inside the window (outside CDS, phase bases, an incomplete trailing codon,
  codons cut by the window edge) are single-base tokens: nothing is ever dropped.
- Overlapping CDS (frequent in bacteria): segments are taken in (start, end) order and a codon is emitted only
  if none of its bases already belongs to an earlier segment's codon; the others become single bases.

``decode(encode(s, cds=...)) == normalize(s)`` for every s and cds (normalize: see
:mod:`genolong.tokenizers.coding`). ``reverse_complement_ids`` maps plus codons to minus codons and back, so
it equals ``encode(reverse_complement(s), cds=<segments flipped>)``.

Protein input: :func:`reverse_translate` (see :mod:`genolong.tokenizers.protein`) and ``encode_protein``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from genolong.tokenizers import vocab as V
from genolong.tokenizers.alphabet import COMPLEMENT, reverse_complement
from genolong.tokenizers.base import DNATokenizerBase
from genolong.tokenizers.cds import MINUS, PLUS, CdsSegment, as_segments, codon_start_kind
from genolong.tokenizers.protein import reverse_translate

UNK_CODON = "[UNK_CODON]"
CODONS = ["".join(p) for p in itertools.product("ACGT", repeat=3)]
_SKIP = np.uint8(255)  # marks bases inside an emitted codon (ids stay below 150)


class CodonTokenizer(DNATokenizerBase):
    """Codons in the annotated frame inside CDS, single bases outside (rules in the module docstring).

    Args:
        translation_table: NCBI genetic code used by ``reverse_translate`` / ``encode_protein`` (11:
        bacterial). soft_mask, iupac, rna, special_tokens_pattern: as for :class:`NucleotideTokenizer`.
    """

    encode_options = ("rna", "cds")
    per_sequence_options = ("cds",)
    specials_in_text = False  # positions must match the CDS coordinates

    def __init__(
        self,
        translation_table: int = 11,
        soft_mask: str = "fold",
        iupac: str = "to_n",
        rna: bool = False,
        special_tokens_pattern: str = "none",
        **kwargs: Any,
    ):
        self.translation_table = int(translation_table)
        super().__init__(
            translation_table=self.translation_table,
            soft_mask=soft_mask,
            iupac=iupac,
            rna=rna,
            special_tokens_pattern=special_tokens_pattern,
            **kwargs,
        )

    @property
    def unk_codon_id(self) -> int:
        return len(V.single_base_tokens(self.iupac))

    @property
    def plus_codon_offset(self) -> int:
        return self.unk_codon_id + 1

    @property
    def minus_codon_offset(self) -> int:
        return self.unk_codon_id + 1 + len(CODONS)

    def _build_tokens(self) -> list[str]:
        return [*V.single_base_tokens(self.iupac), UNK_CODON, *CODONS, *("-" + c for c in CODONS)]

    def _token_contents(self) -> list[str]:
        def content(token: str) -> str:
            if token == UNK_CODON:
                return ""
            return reverse_complement(token[1:]) if token.startswith("-") else token

        return [content(t) for t in self._tokens]

    def _complement_ids(self) -> list[int]:
        def partner(token: str) -> str:
            if len(token) == 3 or token.startswith("-"):
                return token[1:] if token.startswith("-") else "-" + token
            return COMPLEMENT.get(token, token)

        return [self._vocab.get(partner(t), i) for i, t in enumerate(self._tokens)]

    def _encode_piece(self, seq, *, rna: bool, positions: bool, cds=None, **opts: Any):
        base = V.encode_bases(seq, self.soft_mask, self.iupac, rna)  # (L,) uint8
        token = base.copy()  # (L,) uint8 token starting at each base (every id < 150); _SKIP inside a codon
        unknown = None  # (L-2,) bool: an in-frame codon with a non-ACGT base starts here
        if cds is not None and len(base) >= 3:
            kind = codon_start_kind(as_segments(cds), len(base))[:-2]  # (L-2,) no codon starts later
            code = base - np.uint8(V.FIRST_BASE_ID)  # (L,) A0 C1 G2 T3, 4+ for N and ambiguity codes
            ok = code < 4
            np.bitwise_and(code, 3, out=code)
            ok3 = ok[:-2] & ok[1:-1]
            ok3 &= ok[2:]  # (L-2,) the three bases from here are A/C/G/T
            plus, minus = kind == PLUS, kind == MINUS
            unknown = (plus | minus) & ~ok3
            plus &= ok3
            minus &= ok3
            head = token[:-2]
            if plus.any():  # the codon read forward, as a base-4 number
                fwd = code[:-2] << 4
                fwd += code[1:-1] << 2
                fwd += code[2:] + np.uint8(self.plus_codon_offset)
                np.copyto(head, fwd, where=plus)
            if minus.any():  # the codon read on the minus strand: complements (3 - x), right to left
                rev = code[2:] << 4
                rev += code[1:-1] << 2
                rev += code[:-2]
                np.subtract(np.uint8(63 + self.minus_codon_offset), rev, out=rev)
                np.copyto(head, rev, where=minus)
            started = plus | minus
            np.copyto(token[1:-1], _SKIP, where=started)
            np.copyto(token[2:], _SKIP, where=started)
        if unknown is None or not unknown.any():
            keep = token != _SKIP
            return token[keep].astype(self.id_dtype), (np.flatnonzero(keep) if positions else None)
        slots = np.full((len(base), 2), _SKIP, dtype=np.uint8)  # (L, 2): [codon marker, token] per base
        slots[:, 1] = token
        slots[:-2, 0][unknown] = self.unk_codon_id
        flat = slots.reshape(-1)
        keep = flat != _SKIP
        return flat[keep].astype(self.id_dtype), (np.flatnonzero(keep) // 2 if positions else None)

    def reverse_complement_ids(self, ids):
        """Token-space reverse complement; ``[UNK_CODON]`` markers move back in front of their three bases."""
        out = super().reverse_complement_ids(ids)
        arr = np.asarray(out) if isinstance(out, list) else out
        marker = arr == self.unk_codon_id
        where = marker.nonzero(as_tuple=True) if hasattr(marker, "flip") else marker.nonzero()
        lead, cols = where[:-1], where[-1]
        if len(cols):
            ok = cols >= 3
            lead, cols = tuple(i[ok] for i in lead), cols[ok]
            b1, b2, b3 = (arr[(*lead, cols - j)] for j in (3, 2, 1))  # copies (advanced indexing)
            arr[(*lead, cols - 3)] = self.unk_codon_id
            arr[(*lead, cols - 2)], arr[(*lead, cols - 1)], arr[(*lead, cols)] = b1, b2, b3
        return arr.tolist() if isinstance(out, list) else arr

    def reverse_translate(self, protein: str, *, rna: bool = False) -> str:
        """Coding sequence for ``protein`` in this tokenizer's genetic code (:func:`reverse_translate`)."""
        return reverse_translate(protein, self.translation_table, rna=rna)

    def encode_protein(self, protein: str, **kwargs: Any):
        """Codon ids of ``reverse_translate(protein)`` read as one plus-strand CDS."""
        dna = self.reverse_translate(protein)
        return self.encode(dna, cds=[CdsSegment(0, len(dna))] if dna else None, **kwargs)
