"""The ``genolong`` command line.

Every subcommand is a typed function parsed by jsonargparse, so each also takes ``--config FILE``. The
error contract of :mod:`genolong.errors` is applied here and nowhere else: a :class:`GenoLongError` becomes one
line on stderr and its exit code; anything else is a bug (exit 1, with the traceback).
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from genolong.config_files import check_config_files
from genolong.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, GenoLongError, UsageError


def inspect(path: str, fasta: str | None = None, json: bool = False) -> None:
    """Validate a FASTA, VCF/BCF, BAM/CRAM, BED or GFF3/GTF file and print a summary.

    Args:
        path: the file to check; its kind is taken from its name (.fa/.fasta/.fna[.gz], .vcf[.gz]/.bcf,
            .bam/.cram, .bed[.gz], .gff/.gff3/.gtf[.gz]).
        fasta: a reference FASTA: variants are checked against it (REF, contigs, positions); CRAM is decoded
            with it.
        json: print the summary as JSON instead of text.
    """
    from genolong.io.inspect import inspect_file

    summary = inspect_file(path, fasta=fasta)
    print(jsonlib.dumps(summary, indent=2) if json else render_summary(summary))


def evaluate(
    *,
    model: str,
    fasta: str,
    regions: list[str] | str | None = None,
    train_regions: list[str] | str | None = None,
    length: int | None = None,
    stride: int | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    output: str | None = None,
    annotation: str | None = None,
) -> None:
    """Bits per base and perplexity of a causal model on held-out regions, beside an order-k Markov baseline.

    Args:
        model: a Lightning checkpoint (.ckpt) or a save_pretrained directory.
        fasta: the reference FASTA.
        regions: regions to evaluate (contigs, chr:start-end, or a BED file); default: the held-out regions the
            checkpoint was trained with.
        train_regions: regions to fit the Markov baseline on; default: the checkpoint's training regions, else
            everything outside the evaluation regions.
        length: window length in tokens (bases for a single-base model); default: windows spanning about as
            many bases as the model's training windows (for a model trained on 1024-base windows: 1024 tokens of
            a single-base model, ~430 of a codon model on E. coli, ~341 of a 3-mer model).
        stride: window step in tokens; each token is predicted with at least length - stride tokens of context
            (default length // 2).
        batch_size: windows per forward pass.
        device: torch device (cpu, cuda, cuda:1, ...).
        output: also write the result as JSON to this file.
        annotation: GFF3/GTF of the FASTA's CDS, for a codon model (default: the one it was trained with).
    """
    from genolong.pipelines.evaluate import evaluate_language_model

    _check_writable(output, (model, fasta, annotation))
    result = evaluate_language_model(
        model, fasta, regions, train_regions, length, stride, batch_size=batch_size, device=device,
        annotation=annotation,
    )
    if output:
        with open(output, "w") as fh:
            jsonlib.dump(result, fh, indent=2)
    print(render_summary(result))


def export(checkpoint: str, output_dir: str) -> None:
    """Write a Lightning checkpoint as a save_pretrained directory that transformers.Auto* classes load.

    Args:
        checkpoint: the .ckpt file written by `genolong fit`.
        output_dir: folder for config.json, model.safetensors and the tokenizer files.
    """
    from genolong.pipelines.loading import export_pretrained

    print(f"exported to {export_pretrained(checkpoint, output_dir)}")


def score_variants(
    *,
    model: str,
    fasta: str,
    vcf: str,
    output: str,
    method: str = "auto",
    window: int | None = None,
    window_mode: str = "centered",
    no_rc_average: bool = False,
    target: int | str | None = None,
    ref_policy: str = "skip",
    aliases: bool = False,
    device: str = "cpu",
    dtype: str | None = None,
    batch_size: int = 16,
    chunk_size: int = 4096,
    annotation: str | None = None,
) -> None:
    """Score every ALT allele of a VCF with a model; one output row per allele, scored or skipped with a reason.

    Args:
        model: a Lightning checkpoint (.ckpt) or a save_pretrained directory.
        fasta: the reference FASTA the variants were called against.
        vcf: the variants (VCF, bgzipped VCF or BCF); read and scored in chunks, any size.
        output: .tsv, .tsv.gz or .parquet (a table: contig, pos, id, ref, alt as in the VCF, record, allele,
            variant (normalized), kind, status, score, score_forward, score_reverse, window_start, window_end,
            and the method's own extra columns: l2_distance, delta_<output>), or .vcf/.vcf.gz/.bcf (the input
            VCF with GL_SCORE, GL_SCORE_FWD, GL_SCORE_REV and GL_STATUS INFO fields, one value per ALT allele).
        method: auto (from the model), llr (causal: log P(alt window) - log P(ref window), nats),
            masked_marginal (masked: log p(alt) - log p(ref) at the masked site), embedding (1 - cosine of
            pooled embeddings; l2_distance too) or supervised (a classifier/regressor: prediction(alt) -
            prediction(ref)).
        window: window length in bases (default: the model's context less any BOS/EOS tokens, at most 1024).
        window_mode: centered (equal flanks, shifted inside the contig at its ends) or upstream (context before
            the variant only; llr).
        no_rc_average: score the forward strand only (by default the reverse complement is scored too and the
            two are averaged, unless the model is strand-symmetric).
        target: supervised models: the output taken as the score, by index or class name (default: the last
            one); the table has a delta_<class> column for each output.
        ref_policy: on a REF that disagrees with the FASTA: skip (a row with status ref_mismatch), warn (scored
            anyway) or error (exit 5).
        aliases: match contig names chr1/1, chrM/MT between the VCF and the FASTA.
        device: torch device (cpu, cuda, cuda:1, ...).
        dtype: cast the model's weights (e.g. bfloat16 on a GPU); default as saved.
        batch_size: variants per forward pass.
        chunk_size: alleles read, scored and written at a time.
        annotation: GFF3/GTF of the FASTA's CDS, for a codon model (default: the one it was trained with).
    """
    from genolong.pipelines.variant_effect import VariantScorer
    from genolong.pipelines.variant_outputs import output_format, write_variant_scores

    output_format(output)
    _check_writable(output, (model, fasta, vcf, annotation))
    options = dict(method=method, window=window, window_mode=window_mode, rc_average=not no_rc_average,
                   target=target, batch_size=batch_size, annotation=annotation)  # fmt: skip
    with VariantScorer.from_pretrained(model, fasta=fasta, device=device, dtype=dtype, **options) as scorer:
        summary = write_variant_scores(scorer, vcf, output, ref_policy=ref_policy, aliases=aliases,
                                       chunk_size=chunk_size)  # fmt: skip
    print(render_summary(summary), file=sys.stderr)
    print(f"wrote {output}", file=sys.stderr)


def fit_vep(
    *,
    model: str,
    fasta: str,
    vcf: str,
    label_field: str,
    output_dir: str,
    window: int = 1024,
    folds: int = 5,
    regularization: float = 1.0,
    seed: int = 0,
    ref_policy: str = "skip",
    device: str = "cpu",
    batch_size: int = 16,
) -> None:
    """Supervised variant-effect prediction: a logistic regression on frozen [ref, alt - ref] window embeddings.

    Prints the cross-validated AUROC and writes to output_dir: cv_predictions.tsv (each variant's out-of-fold
    probability), metrics.json, and classifier.joblib (the classifier fitted on every variant; a pickle: load
    only files you made, with joblib.load).

    Args:
        model: a Lightning checkpoint (.ckpt) or a save_pretrained directory (any genolong model).
        fasta: the reference FASTA.
        vcf: labelled variants (VCF, bgzipped VCF or BCF).
        label_field: the INFO field holding each record's label: a Flag, or 0/1 or true/false.
        output_dir: folder for the outputs (created).
        window: window length in bases, centred on each variant.
        folds: stratified cross-validation folds.
        regularization: inverse regularization strength C of the logistic regression.
        seed: seed of the fold split.
        ref_policy: on a REF that disagrees with the FASTA: skip, warn or error.
        device: torch device.
        batch_size: windows per forward pass.
    """
    from pathlib import Path

    import joblib
    import pandas as pd

    from genolong.io.fasta import Fasta
    from genolong.pipelines.loading import load_model
    from genolong.pipelines.supervised_vep import SupervisedVEP, check_folds, labelled_variants

    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise UsageError("the output folder is an existing file", path=out, hint="give a folder name")
    check_folds(folds)
    net, tokenizer, _ = load_model(model, None, device)
    with Fasta(fasta) as reference:
        variants, labels, summary = labelled_variants(vcf, reference, label_field, ref_policy=ref_policy)
        out.mkdir(parents=True, exist_ok=True)  # once the inputs are known to be good
        _check_writable(str(out / "metrics.json"))
        vep = SupervisedVEP.fit(net, tokenizer, reference, variants, labels, window=window, folds=folds,
                                regularization=regularization, seed=seed, batch_size=batch_size,
                                device=device, progress=True)  # fmt: skip
    # as score-variants writes them: the VCF's CHROM/POS/REF/ALT, and the normalized change that was scored
    pd.DataFrame({"contig": [v.vcf_contig or v.contig for v in variants], "pos": [v.vcf_pos for v in variants],
                  "id": [v.id for v in variants], "ref": [v.vcf_ref for v in variants],
                  "alt": [v.vcf_alt for v in variants], "record": [v.record for v in variants],
                  "allele": [v.allele for v in variants], "variant": [str(v) for v in variants],
                  "label": labels, "cv_probability": vep.cv_predictions}
                 ).to_csv(out / "cv_predictions.tsv", sep="\t", index=False, float_format="%.6g")  # fmt: skip
    metrics = {"cv_auroc": vep.cv_auroc, "fold_aurocs": vep.fold_aurocs, "folds": folds, "variants": len(labels),
               "positives": int(labels.sum()), "window": window, "model": model, "vcf": summary}  # fmt: skip
    (out / "metrics.json").write_text(jsonlib.dumps(metrics, indent=2))
    joblib.dump(vep.classifier, out / "classifier.joblib")
    skipped = {reason: n for reason, n in summary.get("skipped", {}).items() if n}
    print(render_summary({k: v for k, v in metrics.items() if k != "vcf"} | {"skipped": skipped}))


def embed(
    *,
    model: str,
    fasta: str,
    output: str,
    bed: str | None = None,
    records: list[str] | str | None = None,
    pooling: str = "mean",
    chunk: int | None = None,
    device: str = "cpu",
    batch_size: int = 16,
    annotation: str | None = None,
) -> None:
    """Embeddings of FASTA records or BED regions: the model's final hidden states, pooled or per position.

    Args:
        model: a Lightning checkpoint (.ckpt) or a save_pretrained directory (any genolong model).
        fasta: the FASTA whose records (or regions) are embedded.
        output: .npy (pooled, (N, D); ids in OUTPUT.ids.txt), .npz (per position, one (L, D) array per id) or
            .parquet (pooled: id, e0..; per position: id, position, e0..). Pooled outputs keep one row per
            sequence in input order (repeated ids allowed); per-position ones are keyed by id, so a repeated id
            is refused. Empty sequences (zero-length regions, empty records) are skipped and counted.
        bed: embed these regions (id: the name column, else contig:start-end) instead of whole records.
        records: embed only these FASTA records (default: all, or the BED's regions): one name, names separated by
            commas (chr1,chr2) or a list ('[chr1, chr2]'); not with --bed.
        pooling: mean, last (the last position: all a causal model has read) or none (per position).
        chunk: longest piece read at once, in tokens (default: the model's context). Longer sequences are read in
            pieces with the state carried (recurrent causal models: exact) or as overlapping windows (others).
        device: torch device.
        batch_size: sequences per forward pass.
        annotation: GFF3/GTF of the FASTA's CDS, for a codon model (default: the one it was trained with); its
            positions are then the codons of the CDS and single bases elsewhere.
    """
    from genolong.data.datasets import annotation_for
    from genolong.io.fasta import Fasta
    from genolong.pipelines import embed as embedding
    from genolong.pipelines.loading import load_model, training_annotation
    from genolong.tokenizers.factory import require_annotation

    embedding.check_embed_output(output, pooling)
    _check_writable(output, (model, fasta, bed, annotation))
    unique = embedding.keyed_by_id(output, pooling)
    net, tokenizer, meta = load_model(model, None, device)
    annotation = training_annotation(tokenizer, annotation, meta)
    require_annotation(tokenizer, annotation)
    with Fasta(fasta) as reference:
        frames = annotation_for(annotation, tokenizer, reference.lengths)
        pieces, empty = embedding.drop_empty(list(embedding.sequences_to_embed(reference, records=records, bed=bed,
                                                                               unique_ids=unique)))  # fmt: skip
    if empty:
        logging.getLogger("genolong").warning("%d empty sequences skipped (no bases to embed): %s", len(empty),
                                              ", ".join(empty[:5]) + (", ..." if len(empty) > 5 else ""))  # fmt: skip
    if not pieces:
        raise UsageError("nothing to embed: no regions or records with bases", path=bed or fasta)
    cds = None if frames is None else [frames.segments(p.contig, p.start, p.start + len(p.seq)) for p in pieces]
    vectors = embedding.embed_sequences(net, tokenizer, [p.seq for p in pieces], pooling=pooling, chunk=chunk,
                                        batch_size=batch_size, device=device, progress=True, cds=cds)  # fmt: skip
    embedding.write_embeddings([p.id for p in pieces], vectors, output)
    print(f"{len(pieces)} sequences, {sum(len(p.seq) for p in pieces):,} bases embedded ({pooling} pooling) -> "
          f"{output}" + (f"; {len(empty)} empty skipped" if empty else ""))  # fmt: skip


def ism(
    *,
    model: str,
    fasta: str,
    region: str,
    output: str,
    heatmap: str | None = None,
    method: str = "auto",
    window: int | None = None,
    no_rc_average: bool = False,
    max_length: int = 2000,
    device: str = "cpu",
    batch_size: int = 16,
    annotation: str | None = None,
) -> None:
    """In-silico saturation mutagenesis: every base of a region changed to each other base and scored.

    Args:
        model: a Lightning checkpoint (.ckpt) or a save_pretrained directory.
        fasta: the reference FASTA.
        region: chr:start-end (1-based, inclusive) or a whole contig.
        output: the table (.tsv or .parquet): contig, position, ref, alt, score, score_forward, score_reverse,
            status.
        heatmap: also draw the scores as a PNG (rows A/C/G/T, one column per position, reference base dotted).
        method: as score-variants (auto, llr, masked_marginal, embedding, supervised).
        window: window length in bases (default: the model's context less any BOS/EOS tokens, at most 1024).
        no_rc_average: score the forward strand only.
        max_length: refuse regions longer than this (3 scored variants per base).
        device: torch device.
        batch_size: variants per forward pass.
        annotation: GFF3/GTF of the FASTA's CDS, for a codon model (default: the one it was trained with).
    """
    from genolong.pipelines.ism import plot_heatmap, saturation_mutagenesis
    from genolong.pipelines.variant_effect import VariantScorer
    from genolong.pipelines.variant_outputs import write_table

    if not output.endswith((".tsv", ".parquet")):
        raise UsageError("ism writes its table as .tsv or .parquet", path=output)
    if heatmap and not heatmap.endswith(".png"):
        raise UsageError("ism draws its heatmap as .png", path=heatmap)
    _check_writable(output, (model, fasta, annotation))
    _check_writable(heatmap, (model, fasta, annotation))
    options = dict(method=method, window=window, rc_average=not no_rc_average, batch_size=batch_size,
                   annotation=annotation)  # fmt: skip
    with VariantScorer.from_pretrained(model, fasta=fasta, device=device, **options) as scorer:
        table = saturation_mutagenesis(scorer, region, max_length=max_length)
        units = {"llr": "log-likelihood ratio alt vs ref (nats)", "masked_marginal": "log p(alt) - log p(ref)",
                 "embedding": "1 - cosine similarity", "supervised": "prediction(alt) - prediction(ref)"}  # fmt: skip
        method_used = scorer.method
    write_table(table, output)
    if heatmap:
        plot_heatmap(table, heatmap, title=f"{region}  ({method_used}, {os.path.basename(model.rstrip('/'))})",
                     units=units[method_used])  # fmt: skip
    print(f"{len(table)} variants at {table['position'].nunique()} positions scored -> {output}"
          + (f", {heatmap}" if heatmap else ""))  # fmt: skip


def generate(
    *,
    model: str,
    output: str,
    length: int,
    prompt: str | None = None,
    fasta: str | None = None,
    region: str | None = None,
    num_samples: int = 1,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> None:
    """Sample continuations of a prompt from a causal model and write them as FASTA (A/C/G/T only).

    Args:
        model: a Lightning checkpoint (.ckpt) or a save_pretrained directory of a causal language model.
        output: the FASTA file to write (.fa, .fasta or .fna); records sample_1, sample_2, ... with the settings
            in the header.
        length: bases to generate per sample.
        prompt: the sequence to continue (or give --fasta and --region).
        fasta: a FASTA to take the prompt from.
        region: the prompt's region in that FASTA: chr:start-end (1-based, inclusive) or a contig.
        num_samples: how many continuations.
        temperature: sampling temperature; 0 picks the most probable base at every step.
        top_k: sample among the k most probable bases only.
        seed: sample i uses seed + i.
        device: torch device.
    """
    from genolong.pipelines.generate import FASTA_SUFFIXES, generate_sequences, write_fasta
    from genolong.pipelines.loading import load_model, output_suffix

    if (prompt is None) == (region is None) or (region is not None and fasta is None):
        raise UsageError("give either --prompt SEQUENCE or --fasta FILE with --region REGION")
    output_suffix(output, FASTA_SUFFIXES)
    _check_writable(output, (model, fasta))
    if region is not None:
        from genolong.data.regions import parse_region
        from genolong.io.fasta import Fasta

        with Fasta(fasta) as reference:
            span = parse_region(region, reference.lengths)
            prompt = reference.fetch(span.contig, span.start, span.end).upper()
    net, tokenizer, _ = load_model(model, "causal", device)
    samples = generate_sequences(net, tokenizer, prompt, length=length, num_samples=num_samples, top_k=top_k,
                                 temperature=temperature, seed=seed, device=device, progress=True)  # fmt: skip
    source = region or f"{len(prompt)}-base sequence"
    how = "greedy" if temperature == 0 else f"temperature={temperature} top_k={top_k}"
    write_fasta([(f"sample_{i + 1} prompt={source} {how} seed={seed + i}", s) for i, s in enumerate(samples)],
                output)  # fmt: skip
    print(f"{num_samples} samples of {length} bases -> {output}")


def render_summary(summary: dict[str, Any], indent: int = 0) -> str:
    """Plain-text view of a summary: scalars as ``key: value``, lists of dicts as aligned tables."""
    pad = "  " * indent
    lines: list[str] = []
    for key, value in summary.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.append(render_summary(value, indent + 1) if value else f"{pad}  (none)")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{pad}{key}:")
            lines.extend(_table(value, pad + "  "))
        elif isinstance(value, float):
            lines.append(f"{pad}{key}: {value:.4f}")
        else:
            lines.append(f"{pad}{key}: {value}")
    return "\n".join(lines)


def _table(rows: list[dict[str, Any]], pad: str) -> list[str]:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    out = [pad + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    out += [pad + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return out


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


DESCRIPTION = (
    "Long-range genome models. Commands below; `genolong COMMAND --help` for each. Training and inference "
    "through Lightning: `genolong fit|validate|test|predict --config FILE` (see configs/)."
)

COMMANDS: dict[str, Callable[..., Any]] = {
    "inspect": inspect,
    "evaluate": evaluate,
    "export": export,
    "score-variants": score_variants,
    "fit-vep": fit_vep,
    "embed": embed,
    "ism": ism,
    "generate": generate,
}


def _bare_flags_to_true(args: list[str]) -> list[str]:
    """``--json`` alone means ``--json true`` for boolean options (jsonargparse wants a value)."""
    if not args or args[0] not in COMMANDS:
        return args
    import inspect as pyinspect

    params = pyinspect.signature(COMMANDS[args[0]]).parameters.values()
    flags = {f"--{p.name}" for p in params if p.annotation in (bool, "bool")}
    out = list(args)
    for i, arg in enumerate(out):
        following = out[i + 1].lower() if i + 1 < len(out) else ""
        if arg in flags and following not in ("true", "false", "yes", "no", "1", "0"):
            out[i] = f"{arg}=true"
    return out


def _check_writable(path: str | None, inputs: tuple[str | None, ...] = ()) -> None:
    """Fail before long work, not after it, when an output file cannot be written or is one of the ``inputs``
    (writing it would destroy what is read)."""
    if path is None:
        return
    for given in inputs:
        if given is not None and _same_file(path, given):
            raise UsageError("the output is one of the input files; writing it would destroy that input", path=path,
                             hint="give another output name")  # fmt: skip
    if os.path.isdir(path):
        raise UsageError("the output is a folder; give a file name", path=path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise UsageError("cannot write the output here: its folder does not exist or is read-only", path=path)


def _same_file(a: str, b: str) -> bool:
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def _genolong_cause(error: BaseException) -> GenoLongError | None:
    """The GenoLongError behind ``error``: itself, or one it was raised from (jsonargparse wraps errors raised
    while it instantiates a config's classes)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, GenoLongError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def _configure_logging() -> None:
    """genolong's own log lines on stderr; Lightning configures its loggers itself. Hugging Face's per-file
    "Loading weights" bars say nothing about genolong's work and are turned off."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    logger = logging.getLogger("genolong")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _raise_terminated(signum: int, frame: Any) -> None:
    raise SystemExit(EXIT_TERMINATED)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``genolong`` console script and ``python -m genolong``."""
    from jsonargparse import CLI

    _configure_logging()
    args = sys.argv[1:] if argv is None else argv
    training = bool(args) and args[0] in ("fit", "validate", "test", "predict")
    if not training:  # Lightning handles SIGTERM itself during training (checkpoint, then exit 143)
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if training:
            from genolong.training.lightning_cli import run_lightning_cli

            return run_lightning_cli(argv)
        check_config_files(args)
        CLI(COMMANDS, args=_bare_flags_to_true(args), prog="genolong", description=DESCRIPTION)
    except Exception as error:  # noqa: BLE001 - a GenoLongError may arrive wrapped (jsonargparse, Lightning)
        cause = _genolong_cause(error)
        if cause is None:
            raise
        print(f"genolong: error: {cause}", file=sys.stderr)
        sys.exit(cause.exit_code)
    except KeyboardInterrupt:
        print("genolong: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:  # `genolong inspect x.vcf | head` is not an error
        sys.stderr.close()
