"""``genolong inspect``: recognise a file's kind by its name, validate it with its reader, summarise it.

Each reader module owns its summary (``summarize_fasta``, ``summarize_variants``, ``summarize_alignments``,
``summarize_bed``, ``summarize_gff``); this module only chooses the reader. Summaries are plain JSON-ready
dicts so the CLI can print them as text or JSON.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from genolong.errors import InputMissingError, UsageError

# suffix (without a trailing .gz/.bgz) -> kind
SUFFIX_KINDS = {
    ".fa": "fasta", ".fasta": "fasta", ".fna": "fasta", ".fas": "fasta", ".ffn": "fasta",
    ".vcf": "variants", ".bcf": "variants",
    ".bam": "alignments", ".cram": "alignments", ".sam": "alignments",
    ".bed": "bed",
    ".gff": "gff", ".gff3": "gff", ".gtf": "gff",
}  # fmt: skip


def file_kind(path: str | os.PathLike) -> str:
    """The kind of file ``path`` names, from its suffix: fasta, variants, alignments, bed or gff."""
    name = Path(path).name.lower()
    for compressed in (".gz", ".bgz"):
        if name.endswith(compressed):
            name = name[: -len(compressed)]
    suffix = Path(name).suffix
    if suffix not in SUFFIX_KINDS:
        known = ", ".join(sorted(SUFFIX_KINDS))
        raise UsageError(f"cannot tell the kind of file from its name (known suffixes: {known})", path=path)
    return SUFFIX_KINDS[suffix]


def inspect_file(path: str | os.PathLike, fasta: str | os.PathLike | None = None) -> dict[str, Any]:
    """Validate ``path`` with its reader and return its summary, headed by the file name and kind."""
    kind = file_kind(path)
    for p in (path, fasta):
        if p is not None and not os.path.exists(p):
            raise InputMissingError("no such file", path=p)
    head = {"file": os.fspath(path), "kind": kind}
    if kind == "fasta":
        from genolong.io.fasta import summarize_fasta

        return head | summarize_fasta(path)
    if kind == "variants":
        from genolong.io.variants import summarize_variants

        return head | summarize_variants(path, fasta=fasta)
    if kind == "alignments":
        from genolong.io.bam import summarize_alignments

        return head | summarize_alignments(path, fasta=fasta)
    if kind == "bed":
        from genolong.io.intervals import summarize_bed

        return head | summarize_bed(path, fasta=fasta)
    from genolong.io.gff import summarize_gff

    return head | summarize_gff(path, fasta=fasta)
