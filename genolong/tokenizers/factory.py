"""Tokenizers named by a short spec, so configs and checkpoints store a string, never an object.

Specs: ``nucleotide`` (single base), ``nucleotide:keep`` (IUPAC codes as their own tokens), ``kmer:K`` or
``kmer:K:STRIDE``, ``codon``. The model-side fields a tokenizer implies (vocabulary size, special ids,
complement map) come from :func:`model_config_fields`, so a model is always built to match its tokenizer.
"""

from __future__ import annotations

import os
from typing import Any

from genolong.errors import InconsistentDataError, InputMissingError, UsageError

SPEC_HELP = "nucleotide, nucleotide:keep, kmer:K, kmer:K:STRIDE or codon"


def build_tokenizer(spec: str) -> Any:
    """A genolong tokenizer from its spec string (see the module docstring)."""
    from genolong.tokenizers.codon import CodonTokenizer
    from genolong.tokenizers.kmer import KmerTokenizer
    from genolong.tokenizers.nucleotide import NucleotideTokenizer

    name, *args = spec.strip().lower().split(":")
    try:
        if name == "nucleotide" and len(args) <= 1:
            return NucleotideTokenizer(iupac=args[0] if args else "to_n")
        if name == "kmer" and 1 <= len(args) <= 2:
            k = int(args[0])
            return KmerTokenizer(k=k, stride=int(args[1]) if len(args) == 2 else k)
        if name == "codon" and not args:
            return CodonTokenizer()
    except ValueError as error:
        raise UsageError(f"bad tokenizer spec {spec!r}: {error}", hint=f"use {SPEC_HELP}") from error
    raise UsageError(f"unknown tokenizer spec {spec!r}", hint=f"use {SPEC_HELP}")


def load_tokenizer(path: str | os.PathLike) -> Any:
    """The tokenizer saved in a ``save_pretrained`` directory."""
    from transformers import AutoTokenizer

    from genolong.tokenizers.registration import register_auto_classes

    register_auto_classes()  # AutoTokenizer must know the classes before it reads tokenizer_config.json

    if not os.path.exists(os.path.join(path, "tokenizer_config.json")):
        raise InputMissingError("no tokenizer_config.json: not a saved genolong tokenizer", path=path)
    return AutoTokenizer.from_pretrained(os.fspath(path))


def model_config_fields(tokenizer: Any) -> dict[str, Any]:
    """The ``GenoLongConfig`` fields a tokenizer determines."""
    return {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "mask_token_id": tokenizer.mask_token_id,
        "complement_token_ids": list(tokenizer.complement_token_ids()),
    }


def base_token_ids(tokenizer: Any) -> list[int]:
    """Ids of tokens made only of A/C/G/T: the tokens a language model is scored on."""
    # codon tokens of minus-strand CDS are written "-XYZ"
    return [
        i for token, i in tokenizer.get_vocab().items() if token and set(token.lstrip("-")) <= set("ACGT")
    ]


def takes_cds(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` encodes with a CDS annotation (the codon tokenizer)."""
    return "cds" in getattr(tokenizer, "encode_options", ())


def refuse_without_annotation(tokenizer: Any, task: str, usable: str = "a nucleotide or k-mer tokenizer") -> None:
    """Raise UsageError if ``tokenizer`` needs a CDS annotation, which ``task`` cannot give it: a codon model
    fed single bases where it was trained on codons gives answers that look fine and are not. ``usable``: the
    tokenizers the task takes, for the hint."""
    if takes_cds(tokenizer):
        raise UsageError(f"{task} gives the model no CDS annotation, and its codon tokenizer needs one (it would "
                         "see single bases where it was trained on codons)",
                         hint=f"use a model with {usable} here")  # fmt: skip


def require_annotation(tokenizer: Any, annotation: Any) -> None:
    """Raise UsageError if ``tokenizer`` reads codons (needs a CDS annotation) and ``annotation`` is None."""
    if takes_cds(tokenizer) and annotation is None:
        raise UsageError("the model's codon tokenizer reads codons in the frames of a CDS annotation, and none "
                         "was given", hint="give the FASTA's CDS with --annotation genes.gff3")  # fmt: skip


def special_token_count(tokenizer: Any) -> int:
    """How many special tokens (BOS, EOS) the tokenizer adds around every sequence it encodes: 0, 1 or 2."""
    return len(tokenizer.build_inputs_with_special_tokens([]))


def trailing_special_count(tokenizer: Any) -> int:
    """How many of those special tokens come after the sequence (an EOS): 0 or 1."""
    wrapped = tokenizer.build_inputs_with_special_tokens([-1])
    return len(wrapped) - 1 - wrapped.index(-1)


def bases_per_token(tokenizer: Any) -> list[int]:
    """(V,) the number of bases each scored token spells when decoded (a codon 3, a k-mer its stride, a base 1);
    0 for every id that is not scored (see ``base_token_ids``)."""
    spelled = [0] * len(tokenizer)
    for i in base_token_ids(tokenizer):
        spelled[i] = len(tokenizer.decode([i]))
    return spelled


def canonical_base_ids(tokenizer: Any) -> list[int]:
    """Ids of the single bases A, C, G, T, in that order."""
    return tokenizer.convert_tokens_to_ids(list("ACGT"))


def check_same_tokenizer(data_tokenizer: Any, data_spec: str, model_tokenizer: Any, model_spec: str) -> None:
    """Raise InconsistentDataError unless the data and the model tokenize with the same vocabulary."""
    if data_tokenizer.get_vocab() != model_tokenizer.get_vocab():
        raise InconsistentDataError(
            f"the data are tokenized with {data_spec!r} but the model with {model_spec!r}",
            hint="give model and data the same tokenizer spec",
        )
