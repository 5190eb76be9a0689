"""Backbone and heads: causality, bidirectionality, save/load, Auto* loading, bf16, gradient checkpointing."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
)

from genolong.errors import UsageError
from genolong.models import (
    GenoLongConfig,
    GenoLongForCausalLM,
    GenoLongForMaskedLM,
    GenoLongForSequenceClassification,
    GenoLongForTrackPrediction,
    GenoLongModel,
)
from tests.models.helpers import FAMILIES, random_dna, tiny_config


@pytest.mark.parametrize("family", list(FAMILIES))
def test_dropout_acts_in_training_only(family):
    """Training-mode outputs vary from call to call; in eval mode the model equals the same weights without
    dropout."""
    torch.manual_seed(0)
    model = GenoLongForCausalLM(tiny_config(FAMILIES[family], dropout=0.3))
    plain = GenoLongForCausalLM(tiny_config(FAMILIES[family]))
    plain.load_state_dict(model.state_dict())
    ids = random_dna(2, 24)
    with torch.no_grad():
        first, second = model.train()(ids).logits, model(ids).logits
        assert not torch.allclose(first, second)
        assert torch.equal(model.eval()(ids).logits, plain.eval()(ids).logits)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_causal_lm_never_sees_the_future(family):
    torch.manual_seed(0)
    model = GenoLongForCausalLM(tiny_config(FAMILIES[family])).eval()
    ids = random_dna(2, 24)
    changed = ids.clone()
    changed[:, 15] = 5 + (changed[:, 15] - 5 + 1) % 4  # another base at position 15
    with torch.no_grad():
        a, b = model(ids).logits, model(changed).logits
    assert torch.allclose(a[:, :15], b[:, :15], atol=1e-5)
    assert not torch.allclose(a[:, 15:], b[:, 15:], atol=1e-4)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_masked_lm_sees_both_sides_and_ignores_right_padding(family):
    torch.manual_seed(0)
    model = GenoLongForMaskedLM(tiny_config(FAMILIES[family], bidirectional=True)).eval()
    ids = random_dna(2, 24)
    changed = ids.clone()
    changed[:, 15] = 4  # [MASK]
    with torch.no_grad():
        a, b = model(ids).logits, model(changed).logits
        assert not torch.allclose(a[:, :15], b[:, :15], atol=1e-4)  # left of the change
        assert not torch.allclose(a[:, 16:], b[:, 16:], atol=1e-4)  # right of the change
        # Row 1 padded to 24 after 17 real tokens gives the same predictions as the unpadded 17 tokens.
        padded = ids.clone()
        padded[1, 17:] = 0
        mask = (padded != 0).long()
        out = model(padded, attention_mask=mask).logits
        alone = model(ids[1:, :17]).logits
    assert torch.allclose(out[1, :17], alone[0], atol=1e-5)


def test_heads_refuse_inconsistent_directionality():
    with pytest.raises(UsageError, match="bidirectional=False"):
        GenoLongForCausalLM(tiny_config("hyena*2", bidirectional=True))
    with pytest.raises(UsageError, match="bidirectional=True"):
        GenoLongForMaskedLM(tiny_config("hyena*2"))


@pytest.mark.parametrize("family", ["hyena", "hybrid", "mlstm"])
def test_save_load_and_auto_classes_give_identical_outputs(family, tmp_path):
    torch.manual_seed(0)
    ids = random_dna(2, 16)
    cases = [
        (GenoLongForCausalLM, AutoModelForCausalLM, {}),
        (GenoLongForMaskedLM, AutoModelForMaskedLM, dict(bidirectional=True)),
        (GenoLongForSequenceClassification, AutoModelForSequenceClassification, dict(num_labels=3)),
        (GenoLongModel, AutoModel, {}),
    ]
    for cls, auto_cls, fields in cases:
        model = cls(tiny_config(FAMILIES[family], **fields)).eval()
        path = tmp_path / cls.__name__
        model.save_pretrained(path)
        assert (path / "model.safetensors").exists()
        assert isinstance(AutoConfig.from_pretrained(path), GenoLongConfig)
        with torch.no_grad():
            expected = model(ids)[0]
            for loaded in (cls.from_pretrained(path), auto_cls.from_pretrained(path)):
                assert type(loaded) is cls
                assert torch.equal(loaded.eval()(ids)[0], expected)


def test_lm_head_is_tied_to_the_embedding_and_stays_tied_after_loading(tmp_path):
    model = GenoLongForCausalLM(tiny_config("hyena*2"))
    assert model.lm_head.weight is model.model.embed.weight
    model.save_pretrained(tmp_path)
    loaded = GenoLongForCausalLM.from_pretrained(tmp_path)
    assert loaded.lm_head.weight is loaded.model.embed.weight


@pytest.mark.parametrize("family", list(FAMILIES))
def test_bf16_autocast_forward_and_backward_are_finite(family):
    torch.manual_seed(0)
    model = GenoLongForCausalLM(tiny_config(FAMILIES[family]))
    ids = random_dna(2, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, labels=ids)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("family", ["hyena", "hybrid", "mlstm"])
def test_gradient_checkpointing_gives_the_same_gradients(family):
    ids = random_dna(2, 24)

    def grads(checkpointing: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = GenoLongForCausalLM(
            tiny_config(FAMILIES[family], gradient_checkpointing=checkpointing)
        ).train()
        assert model.model.gradient_checkpointing is checkpointing
        model(ids, labels=ids).loss.backward()
        return {n: p.grad for n, p in model.named_parameters()}

    plain, checkpointed = grads(False), grads(True)
    for name, g in plain.items():
        assert torch.allclose(g, checkpointed[name], atol=1e-6), name


def test_hf_gradient_checkpointing_switch_reaches_the_backbone():
    model = GenoLongForCausalLM(tiny_config("mamba2*2"))
    model.activation_checkpointing_enable()
    assert model.model.gradient_checkpointing
    model.activation_checkpointing_disable()
    assert not model.model.gradient_checkpointing


def test_sequence_classification_pooling_and_losses():
    torch.manual_seed(0)
    ids = random_dna(3, 20)
    ids[0, 12:] = 0  # padding
    for fields, labels in [
        (dict(num_labels=3), torch.tensor([0, 2, 1])),
        (dict(num_labels=1), torch.tensor([0.5, -1.0, 2.0])),
        (
            dict(num_labels=2, problem_type="multi_label_classification"),
            torch.tensor([[1.0, 0], [0, 1], [1, 1]]),
        ),
        (dict(num_labels=3, pooling="last"), torch.tensor([0, 2, 1])),
    ]:
        model = GenoLongForSequenceClassification(tiny_config("(mamba2,attention)", **fields))
        out = model(ids, labels=labels)
        assert out.logits.shape == (3, fields["num_labels"]) and torch.isfinite(out.loss)
        out.loss.backward()
    # Mean pooling ignores padding: the padded row scores as its 12 real tokens alone.
    model = GenoLongForSequenceClassification(tiny_config("hyena*2", num_labels=2)).eval()
    with torch.no_grad():
        assert torch.allclose(model(ids).logits[0], model(ids[:1, :12]).logits[0], atol=1e-5)


def test_track_head_predicts_every_position():
    model = GenoLongForTrackPrediction(tiny_config("mlstm*2", num_tracks=3))
    ids = random_dna(2, 16)
    out = model(ids, labels=torch.randn(2, 16, 3))
    assert out.logits.shape == (2, 16, 3) and torch.isfinite(out.loss)
