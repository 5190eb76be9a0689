"""Language-model pre-training: causal (next base) and masked (BERT-style) objectives as a LightningModule.

The loss is scored only on real bases: padding, special tokens and ``N`` are never targets. Bits per base is
the summed loss in bits over the summed number of bases the scored tokens spell (exact across batches and
processes): a codon token spells 3 bases, a k-mer token the ``stride`` bases it owns, a single base 1, so the
figure is comparable across tokenizers. The training loss itself is the mean over scored tokens.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import SumMetric

from genolong.data.hparams import with_plain_paths
from genolong.errors import UsageError
from genolong.tokenizers.factory import check_same_tokenizer
from genolong.training.optim import configure_adamw, scheduled_steps

LN2 = math.log(2.0)


class LanguageModelModule(L.LightningModule):
    """Pre-train a genolong model from a preset.

    Args:
        preset: a name from ``genolong.models.presets.list_presets()`` (e.g. ``tiny-hyena``).
        model_overrides: fields of the preset's config to change (e.g. ``{"d_model": 96}``).
        tokenizer: tokenizer spec shared with the data module (``nucleotide``, ``kmer:6``, ``codon``).
        objective: ``causal`` (next-token) or ``masked`` (masked-token) language modelling.
        mask_probability: share of scored positions masked (masked objective): 80% become [MASK], 10% a random
            base, 10% stay.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay (never on norms, biases, Hyena filters).
        betas: AdamW betas.
        warmup_steps: linear warmup steps before cosine decay.
        min_lr_ratio: the cosine schedule ends at ``lr * min_lr_ratio``.
        seed: seed of the masking draws (each step's mask depends on (seed, step, rank) only).
        compile: ``torch.compile`` the model (True: the default inductor backend, or a backend name).
    """

    def __init__(
        self,
        preset: str = "tiny-hyena",
        model_overrides: dict[str, Any] | None = None,
        tokenizer: str = "nucleotide",
        objective: str = "causal",
        mask_probability: float = 0.15,
        lr: float = 2e-3,
        weight_decay: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.95),
        warmup_steps: int = 100,
        min_lr_ratio: float = 0.1,
        seed: int = 0,
        compile: bool | str = False,
    ):
        super().__init__()
        if objective not in ("causal", "masked"):
            raise UsageError(f"objective must be 'causal' or 'masked', got {objective!r}")
        self.save_hyperparameters()
        with_plain_paths(self.hparams)  # a Path given in Python is stored as a string
        from genolong.models import GenoLongForCausalLM, GenoLongForMaskedLM, get_preset
        from genolong.tokenizers.factory import (
            base_token_ids,
            bases_per_token,
            build_tokenizer,
            canonical_base_ids,
            model_config_fields,
        )

        self.tokenizer = build_tokenizer(tokenizer)
        overrides = dict(model_overrides or {})
        overrides.setdefault("bidirectional", objective == "masked")
        config = get_preset(preset, **{**model_config_fields(self.tokenizer), **overrides})
        model_class = GenoLongForCausalLM if objective == "causal" else GenoLongForMaskedLM
        self.model = model_class(config)
        if compile:  # in place: parameter names (and checkpoints) stay those of the plain model
            self.model.compile(**({} if compile is True else {"backend": compile}))
        scored = torch.zeros(len(self.tokenizer), dtype=torch.bool)
        scored[base_token_ids(self.tokenizer)] = True
        self.register_buffer("scored", scored, persistent=False)  # (V,) which ids are real bases
        spelled = torch.tensor(bases_per_token(self.tokenizer), dtype=torch.float32)
        self.register_buffer("spelled", spelled, persistent=False)  # (V,) bases each scored id spells
        self.register_buffer("base_ids", torch.tensor(canonical_base_ids(self.tokenizer)), persistent=False)
        self.val_bits, self.val_bases = SumMetric(), SumMetric()
        self.test_bits, self.test_bases = SumMetric(), SumMetric()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, T, V)

    def lm_loss(self, batch: dict[str, Any], draw: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(summed loss in nats, number of scored positions, number of bases they spell) of a batch, each
        position counted by its ``loss_weight`` where the batch has one; ``draw`` seeds the masked-LM mask."""
        ids, attention = batch["input_ids"], batch["attention_mask"]  # (B, T)
        valid = attention & self.scored[ids]  # (B, T)
        causal = self.hparams.objective == "causal"
        if causal:
            logits = self(ids, attention)[:, :-1]  # (B, T-1, V)
            targets, weight = ids[:, 1:], valid[:, 1:]
        else:
            corrupted, weight = self._mask(ids, valid, draw)
            logits, targets = self(corrupted, attention), ids
        if "loss_weight" in batch:  # soft-masked bases weighed down (training windows; see GenomeDataModule)
            weight = weight * batch["loss_weight"][:, 1:] if causal else weight * batch["loss_weight"]  # (B, T')
        nats = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")  # (B, T')
        return (nats * weight).sum(), weight.sum(), (self.spelled[targets] * weight).sum()

    def _mask(self, ids: torch.Tensor, valid: torch.Tensor, draw: int) -> tuple[torch.Tensor, torch.Tensor]:
        """BERT-style corruption; the draw depends only on (seed, draw, rank), so resumes replay it."""
        gen = torch.Generator(device="cpu").manual_seed(
            hash((self.hparams.seed, draw, self.global_rank)) % 2**63
        )
        u = torch.rand(ids.shape, generator=gen).to(ids.device)  # (B, T)
        chosen = valid & (u < self.hparams.mask_probability)
        kind = torch.rand(ids.shape, generator=gen).to(ids.device)
        random_base = self.base_ids[torch.randint(0, 4, ids.shape, generator=gen).to(ids.device)]
        corrupted = torch.where(chosen & (kind < 0.8), self.tokenizer.mask_token_id, ids)
        corrupted = torch.where(chosen & (kind >= 0.8) & (kind < 0.9), random_base, corrupted)
        return corrupted, chosen

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if getattr(datamodule, "tokenizer", None) is not None:
            check_same_tokenizer(
                datamodule.tokenizer, datamodule.hparams.tokenizer, self.tokenizer, self.hparams.tokenizer
            )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        nats, count, bases = self.lm_loss(batch, draw=self.global_step * 65_536 + batch_idx)
        if count == 0:  # nothing to score (all N, or all weighted 0): zero gradients, and no loss of 0 is logged
            self.log("train/unscored_batches", 1.0, reduce_fx="sum")
            return nats  # 0, with its graph, so every replica still takes part in the step
        loss = nats / count
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/bits_per_base", nats / bases.clamp(min=1) / LN2)
        self.log(
            "train/redrawn_windows",
            float(batch["redraws"].sum()) if "redraws" in batch else 0.0,
            reduce_fx="sum",
        )
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        nats, _, bases = self.lm_loss(batch, draw=-1 - batch_idx)  # the same masks at every validation
        self.val_bits.update(nats / LN2)
        self.val_bases.update(bases)

    def on_validation_epoch_end(self) -> None:
        self.log(
            "val/bits_per_base",
            self.val_bits.compute() / self.val_bases.compute().clamp(min=1),
            prog_bar=True,
        )
        self.val_bits.reset()
        self.val_bases.reset()

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        nats, _, bases = self.lm_loss(batch, draw=-1 - batch_idx)
        self.test_bits.update(nats / LN2)
        self.test_bases.update(bases)

    def on_test_epoch_end(self) -> None:
        self.log("test/bits_per_base", self.test_bits.compute() / self.test_bases.compute().clamp(min=1))
        self.test_bits.reset()
        self.test_bases.reset()

    def configure_optimizers(self) -> dict:
        hp = self.hparams
        return configure_adamw(
            self.model,
            hp.lr,
            hp.weight_decay,
            tuple(hp.betas),
            hp.warmup_steps,
            scheduled_steps(self.trainer),
            hp.min_lr_ratio,
        )
