"""generate() with the recurrent / key-value cache equals greedy decoding by repeated full forward passes."""

from __future__ import annotations

import pytest
import torch

from genolong.errors import ResourceLimitError
from genolong.models import GenoLongCache, GenoLongForCausalLM
from tests.models.helpers import FAMILIES, random_dna, state_size, tiny_config

PROMPT, NEW = 9, 12


def greedy_without_cache(model: GenoLongForCausalLM, prompt: torch.Tensor, steps: int):
    """Greedy decoding that re-reads the whole sequence at every step; returns ids and per-step logits."""
    ids, logits = prompt, []
    for _ in range(steps):
        last = model(ids, use_cache=False).logits[:, -1]  # (B, V)
        logits.append(last)
        ids = torch.cat([ids, last.argmax(-1, keepdim=True)], dim=1)
    return ids, logits


@pytest.mark.parametrize("family", list(FAMILIES))
def test_cached_greedy_generation_equals_full_recomputation(family):
    torch.manual_seed(0)
    # eos_token_id=None: decode all NEW steps even if [EOS] wins somewhere.
    model = GenoLongForCausalLM(
        tiny_config(FAMILIES[family], initializer_range=0.3, eos_token_id=None)
    ).eval()
    prompt = random_dna(2, PROMPT, seed=1)
    with torch.no_grad():
        out = model.generate(
            prompt, max_new_tokens=NEW, do_sample=False, return_dict_in_generate=True, output_logits=True
        )
        expected_ids, expected_logits = greedy_without_cache(model, prompt, NEW)
    assert isinstance(out.past_key_values, GenoLongCache)
    assert out.past_key_values.get_seq_length() == PROMPT + NEW - 1  # the last token is never fed back
    assert torch.equal(out.sequences, expected_ids)
    for got, want in zip(out.logits, expected_logits, strict=True):
        assert torch.allclose(got, want, atol=1e-4)


def test_mamba2_and_mlstm_decoding_state_does_not_grow():
    for mixers in ("mamba2*2", "mlstm*2"):
        model = GenoLongForCausalLM(tiny_config(mixers)).eval()
        with torch.no_grad():
            cache = model(random_dna(1, 20), use_cache=True).past_key_values
            before = state_size(cache.layers)
            model(random_dna(1, 1), past_key_values=cache, use_cache=True)
        assert state_size(cache.layers) == before


def test_sampling_beam_search_and_several_sequences_run():
    model = GenoLongForCausalLM(tiny_config("(mamba2,attention)")).eval()
    prompt = random_dna(2, 6)
    torch.manual_seed(0)
    sampled = model.generate(prompt, max_new_tokens=5, do_sample=True, top_k=3, num_return_sequences=2)
    assert sampled.shape[0] == 4 and sampled.shape[1] <= 11
    beams = model.generate(prompt, max_new_tokens=5, num_beams=3, do_sample=False)
    assert torch.equal(
        beams, model.generate(prompt, max_new_tokens=5, num_beams=3, do_sample=False, use_cache=False)
    )


def test_decoding_past_the_context_is_refused():
    model = GenoLongForCausalLM(tiny_config("hyena*2", max_position=16)).eval()
    with pytest.raises(ResourceLimitError, match="context of 16"):
        model.generate(random_dna(1, 10), max_new_tokens=10, do_sample=False)


def test_recurrent_stacks_have_no_context_limit():
    """Mamba2/mLSTM stacks carry a state: a pass or a decoding run longer than max_position is exact."""
    torch.manual_seed(0)
    short = GenoLongForCausalLM(tiny_config("(mamba2,mlstm)", max_position=16)).eval()
    assert not short.config.position_limited and GenoLongForCausalLM(tiny_config("hyena*2")).config.position_limited
    ids = random_dna(1, 40)
    with torch.no_grad():
        whole = short(input_ids=ids).logits
        first = short(input_ids=ids[:, :25], use_cache=True)
        rest = short(input_ids=ids[:, 25:], past_key_values=first.past_key_values).logits
    torch.testing.assert_close(torch.cat([first.logits, rest], dim=1), whole, atol=1e-4, rtol=1e-4)
