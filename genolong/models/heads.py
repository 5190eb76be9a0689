"""Task heads on the genolong backbone: sequence classification/regression and per-position tracks.

With `config.rc_mode == "average"` both heads score the sequence and its reverse complement and average:
sequence outputs directly, per-position outputs after mapping the reverse strand back onto the forward one.
Predictions are then exactly strand-symmetric.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput, TokenClassifierOutput

from genolong.models.configuration import GenoLongConfig
from genolong.models.modeling import GenoLongModel, GenoLongPreTrainedModel
from genolong.models.strand import reverse_rows


def token_mask(
    config: GenoLongConfig, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """(B, L) float mask of real tokens: attention_mask if given, else input_ids != pad_token_id."""
    if attention_mask is not None:
        return attention_mask.float()
    if config.pad_token_id is None:
        return torch.ones_like(input_ids, dtype=torch.float)
    return (input_ids != config.pad_token_id).float()


class GenoLongForSequenceClassification(GenoLongPreTrainedModel):
    """One prediction per sequence: classes (num_labels > 1) or a regression (num_labels == 1 / problem_type).

    Pooling (config.pooling): "mean" over real tokens, or the "last" real token (all a causal model has read).
    """

    def __init__(self, config: GenoLongConfig):
        super().__init__(config)
        self.model = GenoLongModel(config)
        self.score = nn.Linear(config.d_model, config.num_labels)
        self.post_init()

    def pooled_logits(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """input_ids (B, L), mask (B, L) float -> logits (B, num_labels), float32."""
        h = self.model(
            input_ids, attention_mask=mask, return_dict=True
        ).last_hidden_state.float()  # (B, L, D)
        if self.config.pooling == "mean":
            pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # (B, D)
        else:
            last = (mask.sum(1).long() - 1).clamp(min=0)  # (B,) index of the last real token
            pooled = h[torch.arange(h.shape[0], device=h.device), last]  # (B, D)
        return self.score(pooled.to(self.score.weight.dtype)).float()

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        """labels: (B,) class ids; (B,) or (B, num_labels) regression targets; (B, num_labels) 0/1 labels."""
        mask = token_mask(self.config, input_ids, attention_mask)  # (B, L)
        logits = self.pooled_logits(input_ids, mask)  # (B, num_labels)
        if self.config.rc_mode == "average":
            rc_ids, _ = self.strand_reversal(input_ids, mask)
            logits = 0.5 * (logits + self.pooled_logits(rc_ids, mask))  # right padding keeps the same mask
        loss = self.loss(logits, labels) if labels is not None else None
        result = SequenceClassifierOutput(loss=loss, logits=logits)
        return result if return_dict is not False else result.to_tuple()

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of config.problem_type, inferred as transformers does when unset."""
        problem = self.config.problem_type
        if problem is None:
            if self.config.num_labels == 1:
                problem = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
        if problem == "regression":
            return F.mse_loss(logits.squeeze(-1), labels.float().view(logits.squeeze(-1).shape))
        if problem == "single_label_classification":
            return F.cross_entropy(logits, labels.view(-1))
        return F.binary_cross_entropy_with_logits(logits, labels.float())


class GenoLongForTrackPrediction(GenoLongPreTrainedModel):
    """Per-position regression of `config.num_tracks` tracks (coverage, signal), loss MSE over real positions.

    Tracks are taken as unstranded: under rc_mode="average" the reverse strand's predictions are flipped back
    onto the forward strand and averaged without swapping tracks.
    """

    def __init__(self, config: GenoLongConfig):
        super().__init__(config)
        self.model = GenoLongModel(config)
        self.head = nn.Linear(config.d_model, config.num_tracks)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> TokenClassifierOutput | tuple:
        """labels (B, L, num_tracks) targets; positions outside the mask do not count."""
        mask = token_mask(self.config, input_ids, attention_mask)  # (B, L)
        tracks = self.head(
            self.model(input_ids, attention_mask=mask, return_dict=True).last_hidden_state
        ).float()
        if self.config.rc_mode == "average":
            rc_ids, rev = self.strand_reversal(input_ids, mask)
            rc_tracks = self.head(self.model(rc_ids, attention_mask=mask, return_dict=True).last_hidden_state)
            tracks = 0.5 * (tracks + reverse_rows(rc_tracks.float(), rev))  # (B, L, T)
        loss = None
        if labels is not None:
            err = (tracks - labels.float()).pow(2).mean(-1)  # (B, L)
            loss = (err * mask).sum() / mask.sum().clamp(min=1)
        result = TokenClassifierOutput(loss=loss, logits=tracks)
        return result if return_dict is not False else result.to_tuple()
