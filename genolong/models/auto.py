"""Registration of the genolong classes with the transformers Auto* factories.

Two steps, because importing a transformers `PreTrainedModel` costs seconds and pulls in torch._dynamo (and
with it Triton), while the configuration machinery does not:

- `register_auto_config()`: AutoConfig learns ``model_type: "genolong"``; light enough for `import genolong`.
- `register_auto_classes()`: AutoConfig plus AutoModel and AutoModelFor{CausalLM, MaskedLM,
  SequenceClassification, TokenClassification}. Every `GenoLongConfig` calls it when built, so an Auto*
  factory always finds the model classes: ``AutoModelForCausalLM.from_pretrained(saved_dir)`` reads
  config.json (building a GenoLongConfig) before it looks the model class up.

Both are idempotent.
"""

from __future__ import annotations

_models_registered = False


def register_auto_config() -> None:
    """Register `GenoLongConfig` with AutoConfig (no model code imported)."""
    from transformers import AutoConfig

    from genolong.models.configuration import GenoLongConfig

    AutoConfig.register(GenoLongConfig.model_type, GenoLongConfig, exist_ok=True)


def register_auto_classes() -> None:
    """Register the config and every genolong model class with the transformers Auto* factories."""
    global _models_registered
    if _models_registered:
        return
    from transformers import (
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )

    from genolong.models.configuration import GenoLongConfig
    from genolong.models.heads import GenoLongForSequenceClassification, GenoLongForTrackPrediction
    from genolong.models.modeling import GenoLongForCausalLM, GenoLongForMaskedLM, GenoLongModel

    register_auto_config()
    AutoModel.register(GenoLongConfig, GenoLongModel, exist_ok=True)
    AutoModelForCausalLM.register(GenoLongConfig, GenoLongForCausalLM, exist_ok=True)
    AutoModelForMaskedLM.register(GenoLongConfig, GenoLongForMaskedLM, exist_ok=True)
    AutoModelForSequenceClassification.register(
        GenoLongConfig, GenoLongForSequenceClassification, exist_ok=True
    )
    AutoModelForTokenClassification.register(GenoLongConfig, GenoLongForTrackPrediction, exist_ok=True)
    _models_registered = True
