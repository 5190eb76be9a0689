"""Make ``transformers.AutoTokenizer.from_pretrained(dir)`` load the genolong tokenizers, offline.

``save_pretrained`` writes ``tokenizer_config.json`` with ``"tokenizer_class": "NucleotideTokenizer"`` (or
Kmer / Codon). transformers resolves that name through its registry of tokenizer classes, which only
``AutoTokenizer.register(config_class, tokenizer_class)`` fills; the call needs a config class, so each
tokenizer gets a private placeholder config (``model_type`` ``genolong-<class>``, never used by a model; the
genolong model configuration registers itself with ``AutoConfig`` separately). No ``auto_map``, no
``trust_remote_code``.

Every subclass of :class:`genolong.tokenizers.base.DNATokenizerBase` registers itself when its module is
imported; :func:`register_auto_classes` imports the three tokenizer modules, so calling it (as ``import
genolong`` should) is all a fresh process needs before ``AutoTokenizer.from_pretrained``.
"""

from __future__ import annotations

from typing import Any

_CONFIGS: dict[str, type] = {}


def register(tokenizer_class: type) -> None:
    """Register one tokenizer class with ``AutoTokenizer`` (idempotent)."""
    from transformers import AutoTokenizer, PretrainedConfig

    name = tokenizer_class.__name__
    if name not in _CONFIGS:  # one placeholder config class per tokenizer class, created once
        model_type = f"genolong-{name.lower()}"
        _CONFIGS[name] = type(f"_{name}Config", (PretrainedConfig,), {"model_type": model_type})
    try:
        AutoTokenizer.register(
            _CONFIGS[name], tokenizer_class=tokenizer_class, exist_ok=True
        )  # transformers 5
    except TypeError:
        AutoTokenizer.register(_CONFIGS[name], slow_tokenizer_class=tokenizer_class, exist_ok=True)  # 4.x


def register_auto_classes() -> tuple[Any, ...]:
    """Import (and so register) the three genolong tokenizers; returns their classes. Idempotent."""
    from genolong.tokenizers.codon import CodonTokenizer
    from genolong.tokenizers.kmer import KmerTokenizer
    from genolong.tokenizers.nucleotide import NucleotideTokenizer

    return NucleotideTokenizer, KmerTokenizer, CodonTokenizer
