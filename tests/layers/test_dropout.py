"""The CPU dropout of genolong.layers.dropout: nn.Dropout's distribution and scaling, from 16-bit words."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genolong.layers.dropout import WORD_VALUES, Dropout


def kept_share(p: float) -> float:
    return 1 - round(p * WORD_VALUES) / WORD_VALUES


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    p=st.floats(0.0, 0.999),
    seed=st.integers(0, 2**31 - 1),
)
def test_kept_values_are_scaled_and_the_rest_zero(shape, p, seed):
    torch.manual_seed(seed)
    x = torch.rand(shape) + 0.5  # no zeros of its own
    y = Dropout(p)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / kept_share(p))


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5, 0.9])
def test_share_kept_and_mean_match_nn_dropout(p):
    torch.manual_seed(0)
    n = 1 << 20
    y = Dropout(p)(torch.ones(n))
    share = kept_share(p)
    assert abs(share - (1 - p)) <= 1 / WORD_VALUES
    sigma = math.sqrt(share * (1 - share) / n)
    assert abs((y != 0).float().mean().item() - share) < 6 * sigma
    assert abs(y.mean().item() - 1) < 6 * sigma / share  # unbiased, as nn.Dropout


@pytest.mark.parametrize("lag", [1, 3, 4, 5])
def test_neighbours_are_independent(lag):
    """Lags 1-3 share a 64-bit draw, lag 4 starts the next one: all must be uncorrelated."""
    torch.manual_seed(1)
    n = 1 << 20
    kept = (Dropout(0.5)(torch.ones(n)) != 0).float()
    both = (kept[:-lag] * kept[lag:]).mean().item()
    assert abs(both - 0.25) < 6 * math.sqrt(0.25 * 0.75 / n)


def test_gradient_is_the_same_mask_and_scale():
    torch.manual_seed(2)
    x = (torch.rand(4, 33, 7) + 0.5).requires_grad_()
    grad_out = torch.randn(4, 33, 7)
    y = Dropout(0.3)(x)
    y.backward(grad_out)
    expected = torch.where(y != 0, grad_out / kept_share(0.3), torch.zeros(()))
    torch.testing.assert_close(x.grad, expected)


def test_seeded_runs_repeat_and_seeds_differ():
    x = torch.ones(10_000)
    masks = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        masks.append(Dropout(0.2)(x) != 0)
    assert torch.equal(masks[0], masks[1])
    assert not torch.equal(masks[0], masks[2])


def test_identity_in_eval_mode_and_at_zero():
    x = torch.randn(3, 5)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0)(x) is x


def test_bf16_and_a_share_too_small_for_16_bit_words():
    torch.manual_seed(3)
    y = Dropout(0.25)(torch.ones(64, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16
    assert all(v == 0 or v == pytest.approx(1 / 0.75, rel=1e-2) for v in y.unique().tolist())
    # p rounds to all 65536 words: the library's own dropout takes it (and drops everything here)
    assert torch.count_nonzero(Dropout(1 - 1e-6)(torch.ones(1000))) == 0
