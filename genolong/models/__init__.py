"""One backbone with a mixer pattern, its configuration, heads and presets.

The names below load on first use (PEP 562), so that ``import genolong.models`` - and a ``genolong/__init__``
that calls `register_auto_config` - stays light: the model classes import transformers' `PreTrainedModel`,
which pulls in torch._dynamo and Triton.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "GenoLongCache": "genolong.models.cache",
    "GenoLongConfig": "genolong.models.configuration",
    "parse_mixer_pattern": "genolong.models.configuration",
    "GenoLongPreTrainedModel": "genolong.models.modeling",
    "GenoLongModel": "genolong.models.modeling",
    "GenoLongForCausalLM": "genolong.models.modeling",
    "GenoLongForMaskedLM": "genolong.models.modeling",
    "GenoLongForSequenceClassification": "genolong.models.heads",
    "GenoLongForTrackPrediction": "genolong.models.heads",
    "get_preset": "genolong.models.presets",
    "list_presets": "genolong.models.presets",
    "register_auto_config": "genolong.models.auto",
    "register_auto_classes": "genolong.models.auto",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'genolong.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
