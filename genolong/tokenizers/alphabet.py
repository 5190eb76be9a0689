"""The IUPAC DNA alphabet: which bytes are bases, their complements, and reverse complement.

One table serves everyone (readers validate against it, tokenizers encode with it). Lookups are 256-entry
numpy arrays indexed by byte value, so whole sequences are checked or complemented in one vectorised step.
Case is preserved by complementing (``a`` -> ``t``): soft-masking is a policy applied elsewhere, never lost here.
"""

from __future__ import annotations

import numpy as np

# IUPAC nucleotide codes and the set of bases each one stands for.
IUPAC_BASES: dict[str, str] = {
    "A": "A", "C": "C", "G": "G", "T": "T",
    "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG",
    "N": "ACGT",
}  # fmt: skip
CANONICAL = "ACGT"
AMBIGUOUS = "".join(c for c in IUPAC_BASES if c not in CANONICAL)  # RYSWKMBDHVN
# Gap characters some aligners and FASTA writers use; not bases, accepted only where a caller allows them.
GAPS = "-."

_COMPLEMENT_UPPER = {
    "A": "T", "C": "G", "G": "C", "T": "A",
    "R": "Y", "Y": "R", "S": "S", "W": "W", "K": "M", "M": "K",
    "B": "V", "V": "B", "D": "H", "H": "D", "N": "N",
}  # fmt: skip
COMPLEMENT: dict[str, str] = _COMPLEMENT_UPPER | {k.lower(): v.lower() for k, v in _COMPLEMENT_UPPER.items()}

# Letters that occur in protein but are not IUPAC nucleotide codes: their presence marks protein input.
PROTEIN_ONLY = "EFILPQZJOX*"


def _byte_table(letters: str) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    for c in letters:
        table[ord(c)] = True
    return table


IS_IUPAC = _byte_table("".join(IUPAC_BASES) + "".join(IUPAC_BASES).lower())  # (256,) bool
IS_SOFT_MASKED = _byte_table("".join(IUPAC_BASES).lower())  # (256,) bool
IS_PROTEIN_ONLY = _byte_table(PROTEIN_ONLY + PROTEIN_ONLY.lower())  # (256,) bool

COMPLEMENT_BYTES = np.arange(256, dtype=np.uint8)  # (256,) identity outside the alphabet
for _base, _comp in COMPLEMENT.items():
    COMPLEMENT_BYTES[ord(_base)] = ord(_comp)
COMPLEMENT_BYTES.setflags(write=False)


def as_bytes(seq: str | bytes) -> np.ndarray:
    """View a sequence as a (L,) uint8 array without copying where possible."""
    raw = seq.encode("ascii") if isinstance(seq, str) else seq
    return np.frombuffer(raw, dtype=np.uint8)


def invalid_positions(seq: str | bytes) -> np.ndarray:
    """0-based positions of bytes that are not IUPAC nucleotide letters (either case)."""
    return np.flatnonzero(~IS_IUPAC[as_bytes(seq)])


def reverse_complement(seq: str) -> str:
    """Reverse complement over the full IUPAC table, preserving case (``'ACgtN' -> 'NacGT'``).

    Raises ValueError naming the first character outside the alphabet.
    """
    codes = as_bytes(seq)
    bad = np.flatnonzero(~IS_IUPAC[codes])
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"not an IUPAC nucleotide at position {i}: {seq[i]!r}")
    return COMPLEMENT_BYTES[codes[::-1]].tobytes().decode("ascii")


def soft_mask_fraction(seq: str | bytes) -> float:
    """Fraction of bases written in lowercase (soft-masked)."""
    codes = as_bytes(seq)
    return float(IS_SOFT_MASKED[codes].mean()) if codes.size else 0.0
