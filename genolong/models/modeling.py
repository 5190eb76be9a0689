"""The genolong backbone and its language-model heads, as Hugging Face `PreTrainedModel`s.

    input_ids (B, L) -> embed -> [block_1 .. block_n] -> final RMSNorm -> hidden states (B, L, D)
    block:  x = x + mixer(norm(x));  x = x + mlp(norm(x))     (pre-norm residual; the pattern names the mixer)

With `config.bidirectional` the conv/recurrent mixers read the sequence both ways with the same weights
(Caduceus-style: mixer(h) + reverse(mixer(reverse(h)))) and attention drops its causal mask.
Padding goes on the right: causal mixers never see it from real positions, and the reverse pass reverses only
the real part of each row.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast, MaskedLMOutput

from genolong.errors import ResourceLimitError, UsageError
from genolong.layers.dropout import Dropout
from genolong.layers.norm import RMSNorm
from genolong.models.blocks import GenoLongBlock
from genolong.models.cache import GenoLongCache
from genolong.models.configuration import GenoLongConfig
from genolong.models.strand import reverse_index, reverse_rows


class GenoLongPreTrainedModel(PreTrainedModel):
    """Weight init, config class and HF plumbing shared by the backbone and every head."""

    config_class = GenoLongConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["GenoLongBlock"]
    _is_stateful = True  # recurrent caches cannot be rolled back (no assisted decoding)

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=std)
        elif module.__module__.startswith("genolong.layers") and hasattr(module, "reset_parameters"):
            # Layer-specific init (A_log, dt_bias, gate biases, conv taps), skipped for loaded parameters.
            if not any(getattr(p, "_is_hf_initialized", False) for p in module.parameters(recurse=False)):
                module.reset_parameters()

    def _backward_compatibility_gradient_checkpointing(self) -> None:
        # transformers would consume (delete) config.gradient_checkpointing here; GenoLongModel reads it.
        pass

    def strand_reversal(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None):
        """(reverse-complemented ids (B, L), row reversal index (B, L)) for rc_mode="average"."""
        if attention_mask is None and self.config.pad_token_id is not None:
            attention_mask = input_ids != self.config.pad_token_id  # (B, L) padding inferred from the ids
        rev = reverse_index(attention_mask, input_ids)
        comp = torch.tensor(self.config.complement_token_ids, device=input_ids.device)  # (V,)
        return reverse_rows(comp[input_ids], rev), rev


class GenoLongModel(GenoLongPreTrainedModel):
    """The backbone: token ids (B, L) -> final hidden states (B, L, D)."""

    def __init__(self, config: GenoLongConfig):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.embed_dropout = Dropout(config.dropout)
        self.blocks = nn.ModuleList(GenoLongBlock(config, name) for name in config.layer_mixers)
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        # Recompute each block in backward; also switched by activation_checkpointing_enable().
        self.gradient_checkpointing = config.gradient_checkpointing
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        past_key_values: GenoLongCache | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast | tuple:
        """input_ids (B, L) or inputs_embeds (B, L, D); attention_mask (B, past + L): 1 token, 0 right pad."""
        x = self.embed(input_ids) if inputs_embeds is None else inputs_embeds  # (B, L, D)
        x = self.embed_dropout(x)
        L = x.shape[1]
        past = past_key_values.get_seq_length() if past_key_values is not None else 0
        if past + L > self.config.max_position and self.config.position_limited:
            raise ResourceLimitError(
                f"sequence of {past + L} positions exceeds the model's context of {self.config.max_position}",
                hint="use shorter windows, or a config with a larger max_position (Hyena filters end there)",
            )
        if (use_cache or past_key_values is not None) and self.config.bidirectional:
            raise UsageError(
                "a bidirectional model has no decoding cache", hint="call it with use_cache=False"
            )
        if use_cache and past_key_values is None:
            past_key_values = GenoLongCache(len(self.blocks))
        mask = attention_mask if attention_mask is not None and not bool(attention_mask.all()) else None
        rev = None  # (B, L) reversal of each row's real part, for the backward pass of bidirectional mixers
        if self.config.bidirectional:
            rev = reverse_index(mask, x[..., 0])

        hidden_states = [x] if output_hidden_states else None
        for i, block in enumerate(self.blocks):
            state = past_key_values.layers[i] if past_key_values is not None else None
            if self.gradient_checkpointing and self.training and state is None:
                x = checkpoint(block, x, None, mask, rev, use_reentrant=False)
            else:
                x = block(x, state, mask, rev)
            if hidden_states is not None:
                hidden_states.append(x)
        if past_key_values is not None:
            past_key_values.seen_tokens += L
        x = self.norm(x)  # (B, L, D)

        out = BaseModelOutputWithPast(
            last_hidden_state=x,
            past_key_values=past_key_values,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
        )
        return out if return_dict is not False else out.to_tuple()


class GenoLongForCausalLM(GenoLongPreTrainedModel, GenerationMixin):
    """Next-token prediction; `generate()` decodes with a `GenoLongCache`."""

    _tied_weights_keys = {"lm_head.weight": "model.embed.weight"}

    def __init__(self, config: GenoLongConfig):
        if config.bidirectional or config.rc_mode != "none":
            raise UsageError(
                "GenoLongForCausalLM needs bidirectional=False and rc_mode='none'",
                hint="a bidirectional or strand-averaged model sees the future; for strand-symmetric scoring "
                "average the log-likelihoods of the sequence and of its reverse complement",
            )
        super().__init__(config)
        self.model = GenoLongModel(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # forward() creates its own GenoLongCache

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        past_key_values: GenoLongCache | None = None,
        use_cache: bool | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast | tuple:
        """labels (B, L): the input ids themselves (shifted inside), -100 = ignored."""
        decoding = bool(use_cache) or past_key_values is not None
        if decoding and attention_mask is not None and not bool(attention_mask.all()):
            # Hyena, Mamba2 and mLSTM states would absorb the padding; only attention could mask it.
            raise UsageError(
                "generation with a cache needs prompts of equal length (no padding)",
                hint="generate prompt by prompt, or trim the prompts to the same length",
            )
        out = self.model(
            input_ids,
            attention_mask,
            inputs_embeds,
            past_key_values,
            use_cache,
            output_hidden_states,
            return_dict=True,
        )
        h = out.last_hidden_state[:, -logits_to_keep:] if logits_to_keep else out.last_hidden_state
        logits = self.lm_head(h).float()  # (B, L, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)
        result = CausalLMOutputWithPast(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states
        )
        return result if return_dict is not False else result.to_tuple()


class GenoLongForMaskedLM(GenoLongPreTrainedModel):
    """Masked-token prediction with a bidirectional backbone (config.bidirectional=True)."""

    _tied_weights_keys = {"lm_head.weight": "model.embed.weight"}

    def __init__(self, config: GenoLongConfig):
        if not config.bidirectional:
            raise UsageError(
                "GenoLongForMaskedLM needs bidirectional=True", hint="set bidirectional=True in the config"
            )
        super().__init__(config)
        self.model = GenoLongModel(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MaskedLMOutput | tuple:
        """labels (B, L): original ids at masked positions, -100 elsewhere."""
        out = self.model(
            input_ids, attention_mask, output_hidden_states=output_hidden_states, return_dict=True
        )
        logits = self.lm_head(out.last_hidden_state).float()  # (B, L, V)
        if self.config.rc_mode == "average":
            rc_ids, rev = self.strand_reversal(input_ids, attention_mask)
            rc_logits = self.lm_head(
                self.model(rc_ids, attention_mask, return_dict=True).last_hidden_state
            ).float()
            comp = torch.tensor(self.config.complement_token_ids, device=logits.device)  # (V,)
            logits = 0.5 * (logits + reverse_rows(rc_logits, rev)[..., comp])  # back on the forward strand
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        result = MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)
        return result if return_dict is not False else result.to_tuple()
