"""Sampling DNA from a causal model: continuations of a prompt, written as FASTA.

    samples = generate_sequences(model, tokenizer, "ATGGCT...", length=500, num_samples=4, temperature=0.8)

Decoding runs with the model's cache (recurrent state for Mamba2/mLSTM, keys/values for attention, the input
history for Hyena). Only A, C, G and T are sampled: every other token (N, IUPAC codes, special tokens) has its
probability set to zero before sampling, so a continuation is always ``length`` bases of A/C/G/T. Sample ``i``
is drawn with the seed ``seed + i``: it does not depend on how many samples are asked for.
``temperature=0`` decodes greedily (the most probable base each step); ``top_k`` keeps the k most probable.
Models with single-base tokens only: k-mer and codon models are refused (exit 2).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from genolong.errors import ResourceLimitError, UsageError
from genolong.tokenizers.factory import refuse_without_annotation

MAX_SEED = 2**63 - 1  # torch.manual_seed takes a signed 64-bit integer


def generate_sequences(model: Any, tokenizer: Any, prompt: str, *, length: int, num_samples: int = 1,
                       temperature: float = 1.0, top_k: int | None = None, seed: int = 0, device: str = "cpu",
                       progress: bool = False) -> list[str]:  # fmt: skip
    """``num_samples`` continuations of ``prompt``, each ``length`` bases (the prompt not included)."""
    if not prompt:
        raise UsageError("the prompt is empty: generation continues a sequence of at least one base")
    if length < 1 or num_samples < 1:
        raise UsageError(f"length and num_samples must be positive, got {length} and {num_samples}")
    if temperature < 0 or (top_k is not None and top_k < 1):
        raise UsageError(f"temperature must be >= 0 and top_k >= 1, got {temperature} and {top_k}")
    if not 0 <= seed <= MAX_SEED - num_samples:
        raise UsageError(f"seed must be in 0..{MAX_SEED - num_samples} (sample i uses seed + i), got {seed}")
    if not hasattr(model, "generate"):
        raise UsageError(f"generation needs a causal language model; this is a {type(model).__name__}")
    refuse_without_annotation(tokenizer, "generation", "the nucleotide tokenizer")  # it samples single bases
    if len(tokenizer.encode("ACGT", add_special_tokens=False)) != 4:
        raise UsageError("generation samples single bases; this model's tokens are not single bases "
                         f"({type(tokenizer).__name__})", hint="use a model with the nucleotide tokenizer")
    prompt_ids = _prompt_ids(tokenizer, prompt)
    config = model.config
    if config.position_limited and len(prompt_ids) + length > config.max_position:
        raise ResourceLimitError(f"prompt ({len(prompt_ids)} tokens) + length ({length}) exceeds the model's "
                                 f"context of {config.max_position}", hint="shorten the prompt or the length")
    bases = tokenizer.convert_tokens_to_ids(list("ACGT"))
    options = dict(max_new_tokens=length, min_new_tokens=length, use_cache=True, pad_token_id=tokenizer.pad_token_id,
                   suppress_tokens=[i for i in range(len(tokenizer)) if i not in bases])  # fmt: skip
    if temperature == 0:
        options |= dict(do_sample=False)
    else:
        options |= dict(do_sample=True, temperature=temperature, top_k=top_k or 0)
    ids = torch.as_tensor(prompt_ids, dtype=torch.long, device=device)[None]  # (1, P)
    out = []
    for i in tqdm(range(num_samples), desc="sampling", unit="sequence", disable=not progress):
        torch.manual_seed(seed + i)
        with torch.inference_mode():
            tokens = model.generate(ids, **options)[0, ids.shape[1] :]  # (length,)
        out.append(tokenizer.decode(tokens.tolist()).replace(" ", ""))
    return out


def _prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """The prompt's token ids as the model saw sequences begin in training (with its BOS, if the tokenizer adds
    one), but not ended: an EOS the tokenizer appends would have the model continue past a sequence's end."""
    body = [int(i) for i in tokenizer.encode(prompt, add_special_tokens=False)]
    ids = list(tokenizer.build_inputs_with_special_tokens(body))
    return ids[:-1] if len(ids) > len(body) and ids[-1] == tokenizer.eos_token_id else ids


FASTA_SUFFIXES = (".fa", ".fasta", ".fna")  # written plain, never compressed


def write_fasta(records: Sequence[tuple[str, str]], path: str | os.PathLike, width: int = 80) -> None:
    """(header, sequence) records as FASTA, sequence lines ``width`` bases long."""
    with open(path, "w") as fh:
        for header, seq in records:
            fh.write(f">{header}\n")
            fh.writelines(seq[i : i + width] + "\n" for i in range(0, len(seq), width))
