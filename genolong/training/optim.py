"""AdamW with linear warmup and cosine decay; no weight decay on norms, biases and Hyena filter parameters."""

from __future__ import annotations

import math

import torch

# Parameters whose names contain one of these are never decayed: norms and biases (as usual), and the
# positional/implicit filter parameters of Hyena, which HyenaDNA also trains without decay.
NO_DECAY_NAME_PARTS = ("norm", "bias", "filter", "pos_emb", "dt_bias", "A_log")


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim < 2 or any(part in name for part in NO_DECAY_NAME_PARTS):
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.1) -> float:
    """Learning-rate multiplier: linear from 0 to 1 over warmup, then cosine down to ``min_ratio``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def configure_adamw(
    model: torch.nn.Module,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float],
    warmup_steps: int,
    total_steps: int,
    min_lr_ratio: float = 0.1,
) -> dict:
    """The ``configure_optimizers`` answer for Lightning: AdamW plus a per-step warmup/cosine schedule."""
    optimizer = torch.optim.AdamW(parameter_groups(model, weight_decay), lr=lr, betas=betas)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, warmup_steps, total_steps, min_lr_ratio)
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def scheduled_steps(trainer) -> int:
    """The schedule's length: ``max_steps`` when set (asking Lightning to estimate would build the training
    loader before a resume has restored the data position), else Lightning's estimate."""
    max_steps = trainer.max_steps
    return max_steps if max_steps and max_steps > 0 else int(trainer.estimated_stepping_batches)
