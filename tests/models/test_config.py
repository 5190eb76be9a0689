"""GenoLongConfig, the mixer-pattern parser and the presets."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from genolong.errors import UsageError
from genolong.models import GenoLongConfig, GenoLongForCausalLM, get_preset, list_presets, parse_mixer_pattern


def test_patterns_expand_to_one_mixer_per_layer():
    assert parse_mixer_pattern("hyena*3") == ["hyena"] * 3
    assert parse_mixer_pattern("(mamba2*3,attention)*2") == (["mamba2"] * 3 + ["attention"]) * 2
    assert parse_mixer_pattern(" mlstm , (hyena, attention*2) ") == [
        "mlstm",
        "hyena",
        "attention",
        "attention",
    ]
    assert parse_mixer_pattern("((mlstm*2)*2)") == ["mlstm"] * 4


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("", "empty"),
        ("hyena*", "repeat count"),
        ("hyena*0", "repeat count"),
        ("transformer*2", "unknown mixer 'transformer'"),
        ("(hyena,mamba2", "expected ')'"),
        ("hyena)", "unexpected ')'"),
        ("hyena,,mlstm", "expected a mixer name"),
        ("hyena mamba2", "unexpected 'mamba2'"),
    ],
)
def test_bad_patterns_raise_usage_errors_that_say_where(pattern, message):
    with pytest.raises(UsageError, match=re.escape(message)) as err:
        parse_mixer_pattern(pattern)
    assert err.value.exit_code == 2


def test_config_fields_defaults_and_round_trip(tmp_path):
    cfg = GenoLongConfig(mixers="(mamba2*3,attention)*4", d_model=64, attn_n_heads=4)
    assert cfg.n_layers == cfg.num_hidden_layers == 16
    assert cfg.hidden_size == 64
    # Specials map to themselves, A<->T, C<->G, N->N.
    assert cfg.complement_token_ids == [0, 1, 2, 3, 4, 8, 7, 6, 5, 9]
    cfg.save_pretrained(tmp_path)
    again = GenoLongConfig.from_pretrained(tmp_path)
    assert again.to_dict() == cfg.to_dict()


@pytest.mark.parametrize(
    "fields",
    [
        dict(rc_mode="both"),
        dict(pooling="max"),
        dict(backend="cuda"),
        dict(mixers="attention", d_model=30, attn_n_heads=4),
        dict(mixers="mamba2", d_model=32, mamba2_n_heads=5),
        dict(mixers="hyena", hyena_order=1),
        dict(complement_token_ids=[0, 1, 2]),
        dict(complement_token_ids=[0, 1, 2, 3, 4, 6, 7, 8, 5, 9]),  # a permutation, but not an involution
        dict(vocab_size=12, rc_mode="average"),  # no complement map for a foreign vocabulary
        dict(dropout=1.0),
        dict(dropout=-0.1),
        dict(mixers="mlstm", d_model=32, mlstm_qkv_block=5),  # 64 inner channels
        dict(mixers="mlstm", mlstm_qkv_block=-4),
    ],
)
def test_inconsistent_configs_are_refused(fields):
    with pytest.raises(UsageError):
        GenoLongConfig(**fields)


def test_presets():
    names = list_presets()
    for name in ("hyenadna-tiny", "hyenadna-small", "hyenadna-1m", "hybridna-like", "dna-xlstm-like"):
        assert name in names
    for name in ("tiny-hyena", "tiny-hybrid", "tiny-xlstm", "tiny-mamba2"):
        assert name in names
    for name in names:
        assert get_preset(name).n_layers >= 2
    one_m = get_preset("hyenadna-1m")
    assert (one_m.d_model, one_m.n_layers, one_m.max_position) == (256, 8, 1_000_002)
    assert get_preset("tiny-hybrid", bidirectional=True).bidirectional
    assert get_preset("dna-xlstm-like").mlstm_qkv_block == 4  # xLSTM's block-diagonal q/k/v
    with pytest.raises(UsageError, match="unknown model preset"):
        get_preset("hyenadna-huge")


def test_default_vocabulary_matches_the_nucleotide_tokenizer():
    nucleotide = pytest.importorskip("genolong.tokenizers.nucleotide")
    tok = nucleotide.NucleotideTokenizer()
    cfg = GenoLongConfig()
    assert cfg.vocab_size == len(tok)
    special = [cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id, cfg.mask_token_id]
    assert tok.convert_ids_to_tokens(special) == ["[PAD]", "[BOS]", "[EOS]", "[MASK]"]
    # reverse_complement_ids reverses the order too; undo that to read the per-token complement map.
    assert list(tok.reverse_complement_ids(list(range(len(tok)))))[::-1] == cfg.complement_token_ids


LIGHT_THEN_AUTO = """
import sys
import genolong.layers, genolong.models
from genolong.models import register_auto_config
register_auto_config()
heavy = ("lightning", "pysam", "pyfaidx", "triton", "transformers.modeling_utils")
loaded = [m for m in heavy if m in sys.modules]
assert not loaded, loaded
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
assert type(model).__name__ == "GenoLongForCausalLM", type(model)
loaded = [m for m in ("lightning", "pysam", "pyfaidx") if m in sys.modules]
assert not loaded, loaded
"""


def test_light_registration_then_auto_loading_in_a_fresh_process(tmp_path):
    """What genolong/__init__ relies on: registering the config imports no model code, Lightning or readers,
    and is enough for AutoModelForCausalLM to load a saved genolong model."""
    GenoLongForCausalLM(GenoLongConfig(mixers="hyena", d_model=16, hyena_filter_dim=8)).save_pretrained(
        tmp_path
    )
    done = subprocess.run(
        [sys.executable, "-c", LIGHT_THEN_AUTO, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
