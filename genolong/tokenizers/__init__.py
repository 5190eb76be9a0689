"""Tokenizers: single base, k-mer and codon, over the IUPAC DNA alphabet.

Names load on first use (PEP 562), so ``import genolong.tokenizers.alphabet`` stays a numpy-only import for
the readers; the tokenizer classes pull in transformers. Each tokenizer class registers itself with
``transformers.AutoTokenizer`` when defined; :func:`register_auto_classes` defines all three.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "NucleotideTokenizer": "genolong.tokenizers.nucleotide",
    "KmerTokenizer": "genolong.tokenizers.kmer",
    "CodonTokenizer": "genolong.tokenizers.codon",
    "CdsSegment": "genolong.tokenizers.cds",
    "reverse_complement": "genolong.tokenizers.alphabet",
    "reverse_translate": "genolong.tokenizers.protein",
    "register_auto_classes": "genolong.tokenizers.registration",
    "SPECIAL_TOKENS": "genolong.tokenizers.vocab",
    "InvalidSequenceError": "genolong.tokenizers.vocab",
    "TokenizerUsageError": "genolong.tokenizers.vocab",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'genolong.tokenizers' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
