"""genolong: long-range models of DNA at single-base resolution.

Public API re-exports only, loaded on first use (PEP 562): the readers need pysam, the models pull in torch's
compiler stack, and neither is imported until asked for. Importing genolong registers the tokenizers and the
model configuration with ``transformers`` (about two seconds: torch and transformers load), so
``AutoTokenizer``/``AutoConfig``/``AutoModel*.from_pretrained(saved_dir)`` work straight after ``import genolong``.
"""

from __future__ import annotations

import importlib
from typing import Any

from genolong.errors import GenoLongError

__version__ = "0.1.0"

_EXPORTS = {
    # readers
    "Fasta": "genolong.io.fasta",
    "read_variants": "genolong.io.variants",
    "Variant": "genolong.io.alleles",
    "Bam": "genolong.io.bam",
    "read_bed": "genolong.io.intervals",
    "read_gff": "genolong.io.gff",
    "cds_transcripts": "genolong.io.gff",
    # tokenizers
    "NucleotideTokenizer": "genolong.tokenizers.nucleotide",
    "KmerTokenizer": "genolong.tokenizers.kmer",
    "CodonTokenizer": "genolong.tokenizers.codon",
    "reverse_complement": "genolong.tokenizers.alphabet",
    # models
    "GenoLongConfig": "genolong.models.configuration",
    "GenoLongModel": "genolong.models.modeling",
    "GenoLongForCausalLM": "genolong.models.modeling",
    "GenoLongForMaskedLM": "genolong.models.modeling",
    "GenoLongForSequenceClassification": "genolong.models.heads",
    "get_preset": "genolong.models.presets",
    "list_presets": "genolong.models.presets",
    # operators
    "long_conv": "genolong.ops",
    "ssd_scan": "genolong.ops",
    "mlstm": "genolong.ops",
    "short_conv": "genolong.ops",
}

__all__ = ["GenoLongError", "__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'genolong' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def _register_with_transformers() -> None:
    from genolong.models.auto import register_auto_config
    from genolong.tokenizers.registration import register_auto_classes

    register_auto_classes()
    register_auto_config()


_register_with_transformers()
