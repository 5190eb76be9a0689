"""Scoring methods of :class:`~genolong.pipelines.variant_effect.VariantScorer`, one strand at a time.

Each method takes the (ref, alt) window pairs of one strand and returns an (N, K) float64 array; column 0 is the
score, the others are named by ``EXTRA_COLUMNS`` (or ``delta_<k>`` for a supervised model's outputs).

- ``llr`` (causal LM, any tokenizer): log P(alt window) - log P(ref window), in nats, each the sum of its tokens'
  log-probabilities (single bases, k-mers, or a codon model's codons in the windows' CDS frames). Tokens before
  the first one that differs between the two windows are the same and so are their log-probabilities: only
  tokens from the first differing one on are summed. With ``reuse_prefix`` the shared prefix runs once, with a
  decoding cache (attention keys/values, recurrent states, Hyena's input history), and only the two suffixes
  run from it; otherwise both windows run in full. The first token of a window is conditioned on, never
  predicted.
- ``masked_marginal`` (masked LM, substitutions only): the ref window with the tokens that differ from the alt
  window's masked, one pass; the sum over them of log p(alt token) - log p(ref token), in nats. For a
  single-base model these are the changed bases (an MNV's scored independently); for a k-mer model every k-mer
  holding a changed base (with overlapping k-mers, all k of them: none left unmasked shows the new base).
- ``embedding`` (any model): 1 - cosine similarity of the mean-pooled final hidden states of the two windows,
  and their L2 distance as a second column.
- ``supervised`` (sequence classification/regression model): prediction(alt) - prediction(ref) for every output:
  class probabilities (softmax, or sigmoid for multi-label models) or regression values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch

from genolong.errors import UsageError
from genolong.pipelines.variant_windows import StrandPair
from genolong.tokenizers.batching import pad_token_rows
from genolong.tokenizers.factory import takes_cds, trailing_special_count

METHODS = ("llr", "masked_marginal", "embedding", "supervised")
EXTRA_COLUMNS = {"llr": (), "masked_marginal": (), "embedding": ("l2_distance",), "supervised": ()}


@dataclass
class Scoring:
    """What every method needs: the model, its tokenizer and how to run it."""

    model: Any
    tokenizer: Any
    device: str = "cpu"
    batch_size: int = 16  # variants per forward pass (a pass holds up to 2 windows per variant)
    reuse_prefix: bool = True  # llr only
    chunk_tokens: int = 32768  # llr with reuse_prefix: longest piece run at once (memory stays bounded)

    def ids(self, sequences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask), each (B, T) on the device, right-padded."""
        batch = self.tokenizer.batch_encode(sequences, return_tensors="pt")
        return batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)

    @cached_property
    def trailing_specials(self) -> int:
        """The special tokens the tokenizer appends after each sequence (its EOS): 0 or 1."""
        return trailing_special_count(self.tokenizer)

    def encode(self, pair: StrandPair) -> TokenPair:
        """The token ids of a pair's two windows (a codon model's in their CDS frames)."""
        frames = takes_cds(self.tokenizer)

        def ids(seq: str, cds: tuple) -> np.ndarray:  # (T,)
            return np.asarray(self.tokenizer.encode(seq, **({"cds": list(cds)} if frames else {})), dtype=np.int64)

        ref, alt = ids(pair.ref, pair.ref_cds), ids(pair.alt, pair.alt_cds)
        differ = np.flatnonzero(ref[: len(alt)] != alt[: len(ref)])
        shared = int(differ[0]) if len(differ) else min(len(ref), len(alt))
        return TokenPair(ref, alt, shared, self.trailing_specials)

    def padded(self, rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token id rows as (input_ids, attention_mask), each (B, T) on the device, right-padded."""
        ids, mask = pad_token_rows(rows, self.tokenizer.pad_token_id)
        return ids.to(self.device), mask.to(self.device)


@dataclass(frozen=True)
class TokenPair:
    """The ref and alt token ids of a StrandPair; their first ``shared`` tokens are identical, and the last
    ``trailing`` are the tokenizer's EOS."""

    ref: np.ndarray  # (T_ref,)
    alt: np.ndarray  # (T_alt,)
    shared: int
    trailing: int

    def has_predicted_tokens(self) -> bool:
        """Whether llr predicts any sequence token from the first differing one on (a window's first token never
        is; an EOS alone, after a window that ends with the allele, says nothing of the variant)."""
        return max(len(self.ref), len(self.alt)) - self.trailing > max(self.shared, 1)


Tick = Callable[[int], None]


def score_strand(method: str, run: Scoring, items: list[StrandPair] | list[TokenPair], tick: Tick) -> np.ndarray:
    """(N, K) scores of one strand's window pairs with ``method``: for llr their token ids (``run.encode``),
    for the other methods the pairs themselves."""
    if not items:
        return np.zeros((0, 1))
    scorer = {"llr": _llr, "masked_marginal": _masked_marginal, "embedding": _embedding,
              "supervised": _supervised}[method]  # fmt: skip
    if method == "llr":  # windows sharing a prefix length together (cache rows must be equal)
        groups: dict[int, list[int]] = defaultdict(list)
        for i, tokens in enumerate(items):
            groups[tokens.shared if run.reuse_prefix else 0].append(i)
        chunks = [c for idx in groups.values() for c in _chunks(idx, items, run.batch_size)]
    else:
        chunks = _chunks(list(range(len(items))), items, run.batch_size)
    out: np.ndarray | None = None
    with torch.inference_mode():
        for chunk in chunks:
            values = scorer(run, [items[i] for i in chunk])  # (n, K)
            out = np.zeros((len(items), values.shape[1])) if out is None else out
            out[chunk] = values
            tick(len(chunk))
    return out


def _chunks(indices: list[int], items: list[Any], size: int) -> list[list[int]]:
    """Batches of ``size``, windows of similar length together (little padding)."""
    ordered = sorted(indices, key=lambda i: max(len(items[i].ref), len(items[i].alt)))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def _llr(run: Scoring, pairs: list[TokenPair]) -> np.ndarray:
    shared = pairs[0].shared
    if run.reuse_prefix and shared > 0:
        totals = _suffix_log_probs_from_prefix(run, pairs, shared)  # (n, 2)
    else:
        totals = _suffix_log_probs(run, pairs)
    return (totals[:, 1] - totals[:, 0])[:, None]


def _suffix_log_probs(run: Scoring, pairs: list[TokenPair]) -> np.ndarray:
    """(n, 2) sum of log P(token t | tokens < t) over t >= max(shared, 1), ref and alt, from full passes."""
    ids, mask = run.padded([row for p in pairs for row in (p.ref, p.alt)])  # (2n, T)
    logp = _next_token_log_probs(run.model(input_ids=ids).logits, ids)  # (2n, T-1)
    starts = torch.tensor([max(p.shared, 1) - 1 for p in pairs for _ in (0, 1)], device=ids.device)
    keep = (torch.arange(ids.shape[1] - 1, device=ids.device)[None] >= starts[:, None]) & mask[:, 1:].bool()
    return (logp * keep).sum(1).double().cpu().numpy().reshape(-1, 2)


def _suffix_log_probs_from_prefix(run: Scoring, pairs: list[TokenPair], shared: int) -> np.ndarray:
    """The same sums, running the shared prefix once and both suffixes from its decoding cache, each in pieces
    of at most ``run.chunk_tokens`` tokens (the cache carries the context between pieces)."""
    prefix, _ = run.padded([p.ref[:shared] for p in pairs])  # (n, P), equal lengths
    cache, last = None, None
    for piece in prefix.split(run.chunk_tokens, dim=1):
        out = run.model(input_ids=piece, past_key_values=cache, use_cache=True)
        cache, last = out.past_key_values, out.logits[:, -1]
    cache.batch_repeat_interleave(2)  # rows: ref 0, alt 0, ref 1, alt 1, ...
    previous = last.repeat_interleave(2, dim=0)  # (2n, V) predicts the first suffix token
    suffix, mask = run.padded([row[shared:] for p in pairs for row in (p.ref, p.alt)])  # (2n, S), right-padded
    total = torch.zeros(suffix.shape[0], dtype=torch.float64, device=suffix.device)
    for piece, real in zip(suffix.split(run.chunk_tokens, dim=1), mask.split(run.chunk_tokens, dim=1), strict=True):
        logits = run.model(input_ids=piece, past_key_values=cache).logits  # (2n, s, V)
        # previous piece's last logits predict this piece's first token: (2n, s + 1) logits for s targets
        logp = _next_token_log_probs(torch.cat([previous[:, None], logits], 1), torch.cat([piece[:, :1], piece], 1))
        total += (logp * real).sum(1).double()
        previous = logits[:, -1]
    return total.cpu().numpy().reshape(-1, 2)


def _next_token_log_probs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """logits (B, T, V), ids (B, T) -> (B, T-1) log P(ids[:, t+1] | ids[:, :t+1]) in float32."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return logp.gather(-1, ids[:, 1:, None])[..., 0]


def _masked_marginal(run: Scoring, pairs: list[StrandPair]) -> np.ndarray:
    ref_ids, mask = run.ids([p.ref for p in pairs])  # (n, T)
    alt_ids, alt_mask = run.ids([p.alt for p in pairs])
    if not torch.equal(mask, alt_mask):  # a substitution keeps the token count of every tokenizer here
        raise UsageError("masked_marginal needs ref and alt windows of equal token counts")
    changed = ref_ids != alt_ids  # (n, T) the substituted positions
    masked = ref_ids.masked_fill(changed, run.tokenizer.mask_token_id)
    logp = torch.log_softmax(run.model(input_ids=masked, attention_mask=mask).logits.float(), dim=-1)
    diff = logp.gather(-1, alt_ids[..., None])[..., 0] - logp.gather(-1, ref_ids[..., None])[..., 0]  # (n, T)
    return (diff * changed).sum(1).double().cpu().numpy()[:, None]


def _embedding(run: Scoring, pairs: list[StrandPair]) -> np.ndarray:
    from genolong.pipelines.embed import embed_sequences

    embedded = embed_sequences(run.model, run.tokenizer, [s for p in pairs for s in (p.ref, p.alt)],
                               pooling="mean", batch_size=2 * len(pairs), device=run.device)  # fmt: skip
    ref, alt = torch.from_numpy(embedded[0::2]).double(), torch.from_numpy(embedded[1::2]).double()  # (n, D)
    cosine = 1 - torch.nn.functional.cosine_similarity(ref, alt, dim=-1)
    return torch.stack([cosine, (alt - ref).norm(dim=-1)], dim=1).numpy()


def _supervised(run: Scoring, pairs: list[StrandPair]) -> np.ndarray:
    ids, mask = run.ids([s for p in pairs for s in (p.ref, p.alt)])  # (2n, T)
    logits = run.model(input_ids=ids, attention_mask=mask).logits.float()  # (2n, K)
    predictions = supervised_outputs(run.model.config, logits).double().cpu().numpy()
    return predictions[1::2] - predictions[0::2]


def supervised_outputs(config: Any, logits: torch.Tensor) -> torch.Tensor:
    """What a task head predicts: class probabilities, label probabilities or regression values."""
    if config.num_labels == 1 or config.problem_type == "regression":
        return logits
    if config.problem_type == "multi_label_classification":
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=-1)
