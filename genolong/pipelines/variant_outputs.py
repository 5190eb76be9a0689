"""Write variant scores as they are computed: TSV (``.tsv``, ``.tsv.gz``), parquet, or the input VCF annotated.

Chunks of :meth:`VariantScorer.iter_score_vcf` are appended as they come, so a VCF of any size is scored in
bounded memory. Every output is written to a temporary file beside the target and renamed when complete: an
interrupted run never leaves a partial file under the final name.

The annotated VCF (``.vcf``, ``.vcf.gz``, ``.bcf``) is the input, record for record, with INFO fields declared
in its header (``Number=A``: one value per ALT allele, ``.`` for an allele that was not scored):
``GL_SCORE``, ``GL_SCORE_FWD``, ``GL_SCORE_REV`` (floats) and ``GL_STATUS`` (``scored`` or the skip reason).
A record with no ALT is copied unchanged. Contigs and fields the input used without declaring them are declared;
annotations of an earlier genolong run are replaced, not duplicated.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genolong.errors import UsageError
from genolong.io.htslib import HtslibLog
from genolong.pipelines.loading import output_suffix

SUFFIXES = (".tsv", ".tsv.gz", ".parquet", ".vcf", ".vcf.gz", ".bcf")
VCF_FIELDS = {"score": "GL_SCORE", "score_forward": "GL_SCORE_FWD", "score_reverse": "GL_SCORE_REV"}
GL_KEYS = (*VCF_FIELDS.values(), "GL_STATUS")  # every INFO field genolong writes
_TEXT = ("contig", "id", "ref", "alt", "variant", "kind", "status")
RUN_LINE = "genolong_variant_scores"  # the header line naming the method and windows of a run


def output_format(path: str | os.PathLike) -> str:
    """The suffix of ``path`` among :data:`SUFFIXES`; a UsageError (exit 2) otherwise."""
    return output_suffix(path, SUFFIXES)


def write_variant_scores(scorer: Any, vcf: str | os.PathLike, output: str | os.PathLike, **options: Any) -> dict:
    """Score ``vcf`` with ``scorer`` chunk by chunk into ``output``; returns the scorer's summary.
    ``options`` go to :meth:`VariantScorer.iter_score_vcf` (ref_policy, aliases, chunk_size, progress)."""
    suffix = output_format(output)
    chunks = scorer.iter_score_vcf(vcf, **options)
    temporary = Path(f"{output}.partial{suffix}")
    try:
        if suffix in (".tsv", ".tsv.gz"):
            _write_tsv(chunks, temporary, suffix == ".tsv.gz", scorer.columns)
        elif suffix == ".parquet":
            _write_parquet(chunks, temporary, scorer.columns)
        else:
            _write_vcf(chunks, vcf, temporary, suffix, scorer)
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    return scorer.summary


def write_table(table: pd.DataFrame, output: str | os.PathLike) -> None:
    """One finished table (e.g. from ``scorer.score(variants)``) as TSV or parquet."""
    suffix = output_format(output)
    if suffix == ".parquet":
        _write_parquet([table], Path(output), list(table.columns))
    elif suffix in (".tsv", ".tsv.gz"):
        _write_tsv([table], Path(output), suffix == ".tsv.gz", list(table.columns))
    else:
        raise UsageError("a table without its VCF is written as .tsv, .tsv.gz or .parquet", path=output)


def _write_tsv(chunks: Iterable[pd.DataFrame], path: Path, compress: bool, columns: list[str]) -> None:
    with gzip.open(path, "wt") if compress else open(path, "w") as fh:
        first = True
        for table in chunks:
            table.to_csv(fh, sep="\t", index=False, header=first, na_rep="", float_format="%.8g")
            first = False
        if first:  # no alleles at all: the header still says what the columns are
            fh.write("\t".join(columns) + "\n")


def _write_parquet(chunks: Iterable[pd.DataFrame], path: Path, columns: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {c: pa.string() for c in _TEXT} | {c: pa.int64() for c in ("pos", "record", "allele")}
    schema = pa.schema([(c, types.get(c, pa.int64() if c.startswith("window_") else pa.float64())) for c in columns])
    with pq.ParquetWriter(path, schema) as writer:
        for table in chunks:
            writer.write_table(pa.Table.from_pandas(table, schema=schema, preserve_index=False))


def _write_vcf(chunks: Iterator[pd.DataFrame], vcf: str | os.PathLike, path: Path, suffix: str, scorer: Any) -> None:
    import pysam

    header, completed = _annotated_header(vcf, scorer)
    repaired = Path(f"{path}.input.vcf.gz")
    if completed is not None:  # records parsed against an incomplete header cannot be written (htslib exits)
        _copy_with_header(vcf, completed, repaired)
    mode = {".vcf": "w", ".vcf.gz": "wz", ".bcf": "wb"}[suffix]
    try:
        with HtslibLog():  # the reader reported this file's htslib warnings already
            source = pysam.VariantFile(os.fspath(repaired if completed is not None else vcf))
            sink = pysam.VariantFile(os.fspath(path), mode, header=header)
        with source, sink:
            records = enumerate(source, 1)
            for table in chunks:  # scoring runs here, outside the stderr capture (progress bar, log)
                by_record = {n: rows for n, rows in table.groupby("record", sort=False)}
                with HtslibLog():
                    for number, record in records:
                        record.translate(header)
                        if record.alts:
                            _annotate(record, by_record[number])
                        else:
                            _clear_annotations(record)
                        sink.write(record)
                        if number == table["record"].iloc[-1]:
                            break
    finally:
        repaired.unlink(missing_ok=True)


def _annotated_header(vcf: str | os.PathLike, scorer: Any) -> tuple[Any, str | None]:
    """(the output header: the input's, completed, with this run's GL_* fields; the completed input header as
    text when the input's own was missing declarations, else None).

    A first pass reads every record: htslib declares the contigs, INFO and FORMAT fields a header forgot as it
    meets them. Annotations of an earlier genolong run are replaced.
    """
    import pysam

    with HtslibLog(), pysam.VariantFile(os.fspath(vcf)) as source:
        declared = str(source.header)
        for _ in source:
            pass
        header = source.header.copy()
    completed = str(header) if str(header) != declared else None
    for key in GL_KEYS:
        if key in header.info:
            header.info.remove_header(key)
    for record in [r for r in header.records if r.key == RUN_LINE]:
        record.remove()
    what = f"genolong {scorer.method} variant score"
    for column, key in VCF_FIELDS.items():
        strand = {"score": "mean of the scored strands", "score_forward": "forward strand",
                  "score_reverse": "reverse strand"}[column]  # fmt: skip
        header.add_line(f'##INFO=<ID={key},Number=A,Type=Float,Description="{what}, {strand}">')
    header.add_line('##INFO=<ID=GL_STATUS,Number=A,Type=String,Description="genolong: scored, or why not">')
    header.add_line(f"##{RUN_LINE}=<method={scorer.method},window={scorer.window},"
                    f"window_mode={scorer.window_mode},rc_average={scorer.rc_average}>")  # fmt: skip
    return header, completed


def _copy_with_header(vcf: str | os.PathLike, header: str, path: Path) -> None:
    """The text VCF ``vcf`` with ``header`` instead of its own, bgzipped to ``path``."""
    import pysam

    from genolong.io.intervals import open_text

    with open_text(vcf) as lines, pysam.BGZFile(os.fspath(path), "wb") as out:
        out.write(header.encode())
        for line in lines:
            if not line.startswith("#"):
                out.write(line.encode())


def _clear_annotations(record: Any) -> None:
    """Drop GL_* values an earlier run left on a record that gets none now (no ALT)."""
    for key in GL_KEYS:
        if key in record.info:
            del record.info[key]


def _annotate(record: Any, rows: pd.DataFrame) -> None:
    """Set the GL_* INFO fields of ``record`` from its alleles' rows."""
    alleles = {int(a): row for a, row in zip(rows["allele"], rows.itertuples(index=False), strict=True)}
    n = len(record.alts)
    for column, key in VCF_FIELDS.items():
        values = [getattr(alleles[i], column) if i in alleles else np.nan for i in range(1, n + 1)]
        record.info[key] = tuple(None if np.isnan(v) else float(v) for v in values)
    record.info["GL_STATUS"] = tuple(alleles[i].status if i in alleles else "missing" for i in range(1, n + 1))
