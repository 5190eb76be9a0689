"""Protein -> coding DNA (reverse translation), deterministic and checked against an NCBI genetic code.

Rule: each amino acid becomes the *first* codon, in the NCBI table order (TCAG: TTT, TTC, TTA, TTG, TCT, ...),
that codes for it in the chosen translation table (Biopython's ``Bio.Data.CodonTable``); ``*`` becomes the
first stop codon and ``X`` (any amino acid) becomes ``NNN``. In table 11: F=TTT L=TTA S=TCT Y=TAT *=TAA C=TGT
W=TGG P=CCT H=CAT Q=CAA R=CGT I=ATT M=ATG T=ACT N=AAT K=AAA V=GTT A=GCT D=GAT E=GAA G=GGT. Pass ``codons={"L":
"CTG", ...}`` to choose others (each is checked to code for its amino acid). Translating the result with the
same table gives the protein back. Lowercase letters are accepted; anything else (B, Z, J, U, O, digits) is an
error naming the position.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from functools import cache

from genolong.tokenizers import vocab as V


@cache
def codon_choice(table: int = 11) -> dict[str, str]:
    """Amino acid (and ``*``, ``X``) -> the codon :func:`reverse_translate` writes, for an NCBI table id."""
    from Bio.Data import CodonTable

    try:
        code = CodonTable.unambiguous_dna_by_id[table]
    except KeyError:
        known = sorted(CodonTable.unambiguous_dna_by_id)
        raise V.TokenizerUsageError(f"unknown NCBI translation table {table} (known: {known})") from None
    choice: dict[str, str] = {}
    for codon in ("".join(p) for p in itertools.product("TCAG", repeat=3)):
        amino = code.forward_table.get(codon, "*" if codon in code.stop_codons else None)
        if amino is not None:
            choice.setdefault(amino, codon)
    choice["X"] = "NNN"
    return choice


def reverse_translate(
    protein: str, table: int = 11, *, rna: bool = False, codons: Mapping[str, str] | None = None
) -> str:
    """Coding DNA for ``protein`` (RNA with ``rna=True``) under NCBI translation table ``table``."""
    choice = dict(codon_choice(table))
    if codons:
        from Bio.Seq import Seq

        for amino, codon in codons.items():
            codon = codon.upper().replace("U", "T")
            if str(Seq(codon).translate(table=table)) != amino.upper():
                raise V.TokenizerUsageError(f"codon {codon} does not code for {amino!r} in table {table}")
            choice[amino.upper()] = codon
    letters = protein.upper()
    for char in set(letters) - set(choice):
        pos = letters.index(char)
        raise V.InvalidSequenceError(
            protein[pos],
            pos,
            f"not an amino acid of table {table} (20 standard letters, * for stop, X for any)",
        )
    dna = letters.translate(str.maketrans(choice))
    return dna.replace("T", "U") if rna else dna
