"""Hypothesis strategies and settings shared by the tokenizer tests."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from genolong.tokenizers.alphabet import IUPAC_BASES

IUPAC_UPPER = "".join(IUPAC_BASES)  # ACGTRYSWKMBDHVN
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def dna(alphabet: str = "ACGT", min_size: int = 0, max_size: int = 300) -> st.SearchStrategy[str]:
    """Strings over ``alphabet``, biased towards runs of canonical bases so k-mers and codons occur."""
    return st.text(alphabet=st.sampled_from(alphabet), min_size=min_size, max_size=max_size)


ANY_CASE_IUPAC = IUPAC_UPPER + IUPAC_UPPER.lower()
