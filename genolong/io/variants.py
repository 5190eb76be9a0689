"""VCF/BCF variants, split per ALT allele, trimmed and left-aligned, with every skipped allele counted.

``reader = read_variants("calls.vcf.gz", "ref.fa")`` is iterable (once) and yields :class:`Variant` objects
with a 0-based ``pos``; ``reader.summary`` counts records, alleles, yielded variants and skips by reason as
iteration proceeds, and always balances: ``alleles == yielded + sum(skipped.values())``.

htslib writes its warnings and errors straight to file descriptor 2; :class:`~genolong.io.htslib.HtslibLog`
captures them while records are pulled (in batches, so stderr is restored whenever control returns to the
caller), turns the messages into log records naming file and line, and folds errors into a
:class:`~genolong.errors.MalformedInputError`.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from genolong.errors import InconsistentDataError, InputMissingError, MalformedInputError, UsageError
from genolong.io.alleles import Fetch, SkippedAllele, Variant, allele_problem, normalize, reference_problem
from genolong.io.htslib import HtslibLog
from genolong.io.intervals import Reference, open_reference, open_text

logger = logging.getLogger(__name__)

RefPolicy = Literal["error", "skip", "warn"]
SKIP_REASONS = ("missing_alt", "symbolic", "breakend", "spanning_deletion", "invalid_bases", "alt_equals_ref",
                "unknown_contig", "out_of_bounds", "ref_mismatch")  # fmt: skip
BATCH = 4096  # records pulled per stderr redirection
@dataclass
class VariantSummary:
    """Counts filled while iterating; ``balanced`` is the accounting invariant."""

    records: int = 0
    alleles: int = 0
    yielded: int = 0
    skipped: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    contigs: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    ref_mismatch_warned: int = 0  # yielded anyway under ref_policy="warn"
    messages: list[str] = field(default_factory=list)  # htslib warnings, as 'line N: text'

    @property
    def balanced(self) -> bool:
        return self.alleles == self.yielded + sum(self.skipped.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "alleles": self.alleles,
            "variants": self.yielded,
            "types": {k: self.kinds[k] for k in ("SNV", "MNV", "insertion", "deletion", "complex")},
            "skipped": {reason: self.skipped[reason] for reason in SKIP_REASONS},
            "ref_mismatch_warned": self.ref_mismatch_warned,
            "contigs": {c: dict(n) for c, n in self.contigs.items()},
            "htslib_warnings": len(self.messages),
        } | ({"warnings": "; ".join(self.messages[:10])} if self.messages else {})


def _aliases(name: str) -> list[str]:
    from genolong.io.fasta import alias_candidates  # lazy: genolong.io.fasta pulls in the tokenizers

    return alias_candidates(name)


class VariantReader:
    """Iterate once over the normalized variants of a VCF/BCF; see :func:`read_variants`."""

    def __init__(self, path: str | os.PathLike, fasta: Any = None, *, ref_policy: RefPolicy = "error",
                 aliases: bool = False, left_align: bool = True,
                 on_skip: Callable[[SkippedAllele], None] | None = None):  # fmt: skip
        if ref_policy not in ("error", "skip", "warn"):
            raise UsageError(f"ref_policy must be 'error', 'skip' or 'warn', not {ref_policy!r}")
        self.path, self.ref_policy = os.fspath(path), ref_policy
        self.aliases, self.left_align, self.on_skip = aliases, left_align, on_skip
        if not os.path.exists(self.path):
            raise InputMissingError("no such variant file", path=self.path)
        if not os.path.isfile(self.path) and not os.path.isdir(self.path):
            raise UsageError("not a regular file (a pipe?): variant files are read more than once", path=self.path,
                             hint="save the stream to a file first")  # fmt: skip
        self.reference: Reference | None = open_reference(fasta)
        self._owns_reference = self.reference is not None and self.reference is not fasta  # opened from a path
        self.summary = VariantSummary()
        self._names: dict[str, str | None] = {}
        self._used = self._mismatch = False
        self._header_lines: int | None = None
        self._vcf = self._open()
        self._header_lines = self._count_header_lines() if self._vcf.format == "VCF" else None
        self._lengths = self._contig_lengths()

    def _open(self) -> Any:
        import pysam

        with HtslibLog() as log:
            try:
                handle, error = pysam.VariantFile(self.path), None
            except (ValueError, OSError, NotImplementedError) as exc:
                handle, error = None, exc
            messages = log.poll()
        if error is not None:
            raise self._open_error(error, messages)
        for message in messages:
            self._note(None, message)
        return handle

    def _open_error(self, error: Exception, messages: list[tuple[str, str]]) -> Exception:
        if isinstance(error, (FileNotFoundError, PermissionError)):
            return InputMissingError(f"cannot read ({error.strerror})", path=self.path)
        if isinstance(error, NotImplementedError):
            return MalformedInputError("compressed with gzip, not bgzip", path=self.path,
                                       hint="recompress it: zcat FILE | bgzip > FILE.vcf.gz")  # fmt: skip
        detail = "; ".join(t for lv, t in messages if lv == "E")
        if "EOF marker" in (detail or str(error)):
            return MalformedInputError("looks truncated: no BGZF end-of-file block", path=self.path,
                                       hint="recompress it with bgzip, or copy or download it again")  # fmt: skip
        if "No sample line" in detail:
            return MalformedInputError("bad VCF header: no '#CHROM POS ID REF ALT ...' line", path=self.path)
        with open_text(self.path) as handle:
            try:
                first = handle.readline()
            except (UnicodeDecodeError, OSError, EOFError):
                first = "?"
        if not first:
            return MalformedInputError("the file is empty", path=self.path)
        if not first.startswith("##fileformat=VCF"):
            return MalformedInputError("not VCF/BCF: expected ##fileformat=VCFv4.x", path=self.path, line=1)
        return MalformedInputError(f"bad VCF header: {detail or error}", path=self.path)

    def _count_header_lines(self) -> int:
        with open_text(self.path) as handle:
            return sum(1 for _ in itertools.takewhile(lambda s: s.startswith("#"), handle))

    def _contig_lengths(self) -> dict[str, int]:
        declared = {name: c.length for name, c in self._vcf.header.contigs.items() if c.length}
        if self.reference is None:
            return declared
        for name, length in declared.items():
            known = self._resolve(name)
            if known is not None and self.reference.lengths[known] != length:
                raise InconsistentDataError(
                    f"contig {name} has length {length} in the VCF header but "
                    f"{self.reference.lengths[known]} in the FASTA", path=self.path,
                    hint="is this the reference the variants were called against?")  # fmt: skip
        return dict(self.reference.lengths)

    def _resolve(self, name: str) -> str | None:
        """The reference's name for a VCF contig (None: not in the reference)."""
        if name not in self._names:
            lengths = self.reference.lengths if self.reference is not None else {name: 0}
            candidates = (name, *_aliases(name)) if self.aliases else (name,)
            self._names[name] = next((c for c in candidates if c in lengths), None)
        return self._names[name]

    def _note(self, line: int | None, message: tuple[str, str]) -> None:
        where = "line" if self._header_lines is not None else "record"
        text = f"{where} {line}: {message[1]}" if line is not None else message[1]
        self.summary.messages.append(text)
        logger.warning("%s: htslib: %s", self.path, text)

    def _records(self) -> Iterator[tuple[int, Any]]:
        records, number = iter(self._vcf), 0
        while True:
            batch, notes, error = [], [], None
            with HtslibLog() as log:
                try:
                    for record in itertools.islice(records, BATCH):
                        number += 1
                        batch.append((number, record))
                        notes += [(number, m) for m in log.poll()]
                except (OSError, ValueError) as exc:
                    error = exc
                notes += [(number + 1, m) for m in log.poll()]
            failing = number + 1 if error is not None else None
            for n, message in notes:
                if n != failing:
                    self._note(self._line(n) or n, message)
            yield from batch
            if error is not None:
                failed = [(lv, t) for n, (lv, t) in notes if n == failing]
                htslib = "; ".join(t for lv, t in failed if lv == "E") or "; ".join(t for _, t in failed)
                detail = self._diagnose(failing) or htslib
                raise MalformedInputError(
                    f"cannot parse record {failing}: {detail or error}", path=self.path,
                    line=self._line(failing), hint="columns: CHROM POS ID REF ALT QUAL FILTER INFO")
            if len(batch) < BATCH:
                return

    def _diagnose(self, number: int) -> str | None:
        """What is wrong with the columns of record ``number`` of a text VCF, where htslib's words (e.g.
        "truncated file" for a short row) would mislead; None if its columns look right."""
        line = self._line(number)
        if line is None:
            return None
        with open_text(self.path) as handle:
            text = next(itertools.islice(handle, line - 1, None), "").rstrip("\r\n")
        columns = text.split("\t")
        if len(columns) >= 8:
            return None
        if not text.strip():
            return "it is a blank line"
        spaces = " (its fields are separated by spaces, not tabs)" if len(text.split()) >= 8 else ""
        plural = "s" if len(columns) > 1 else ""
        return f"it has {len(columns)} tab-separated column{plural} where a VCF record needs at least 8{spaces}"

    def _line(self, number: int) -> int | None:
        """The 1-based line of record ``number`` in a text VCF (None for BCF)."""
        return None if self._header_lines is None else number + self._header_lines

    def __iter__(self) -> Iterator[Variant]:
        if self._used:
            raise UsageError("a variant reader is iterated once; call read_variants again", path=self.path)
        self._used = True
        try:
            for number, record in self._records():
                yield from self._variants(number, record)
        finally:
            self.close()

    def _variants(self, number: int, rec: Any) -> Iterator[Variant]:
        s = self.summary  # alleles are counted as they are decided, so the summary balances at every yield
        alts = rec.alts or ()
        s.records += 1
        s.contigs[rec.chrom]["records"] += 1
        line = self._line(number)
        contig, reason = self._check_record(rec, line)
        if reason is not None:
            for index, alt in enumerate(alts or ("",), 1):
                s.alleles += 1
                self._skip(number, index, rec, alt, reason)
            return
        fetch = self._fetcher(contig) if self.left_align and not self._mismatch else None
        for index, alt in enumerate(alts, 1):
            s.alleles += 1
            reason = allele_problem(rec.ref.upper(), alt.upper())
            if reason is not None:
                self._skip(number, index, rec, alt, reason)
                continue
            pos, ref, alt_n = normalize(rec.start, rec.ref, alt, fetch)
            variant = Variant(contig, pos, ref, alt_n, rec.id, number, line, rec.pos, rec.ref, alt, index,
                              rec.chrom, self._mismatch)  # fmt: skip
            s.yielded += 1
            s.kinds[variant.kind] += 1
            s.contigs[rec.chrom]["variants"] += 1
            yield variant

    def _skip(self, number: int, index: int, rec: Any, alt: str, reason: str) -> None:
        self.summary.skipped[reason] += 1
        if self.on_skip is not None:
            self.on_skip(SkippedAllele(rec.chrom, rec.pos, rec.id, rec.ref or "", alt, number, index, reason))

    def _check_record(self, rec: Any, line: int | None) -> tuple[str, str | None]:
        """(reference contig name, skip reason or None); applies the REF policy."""
        self._mismatch = False
        if not rec.alts:
            return rec.chrom, "missing_alt"
        contig = self._resolve(rec.chrom)
        if contig is None:
            return rec.chrom, "unknown_contig"
        if (reason := reference_problem(rec.start, rec.ref, self._lengths.get(contig))) is not None:
            return contig, reason
        if self.reference is None:
            return contig, None
        found = self.reference.fetch(contig, rec.start, rec.start + len(rec.ref)).upper()
        if found == rec.ref.upper():
            return contig, None
        message = f"REF {rec.ref!r} at {rec.chrom}:{rec.pos} does not match the reference {found!r}"
        if self.ref_policy == "error":
            raise InconsistentDataError(message, path=self.path, line=line, record=rec.id,
                                        hint="is the FASTA the reference of the calls? or skip mismatches")
        if self.ref_policy == "skip":
            return contig, "ref_mismatch"
        self._mismatch = True
        self.summary.ref_mismatch_warned += 1
        if self.summary.ref_mismatch_warned <= 20:
            logger.warning("%s: %s (kept, trimmed but not left-aligned)", self.path, message)
        return contig, None

    def _fetcher(self, contig: str) -> Fetch | None:
        if self.reference is None:
            return None
        reference = self.reference
        return lambda start, end: reference.fetch(contig, start, end).upper()

    def close(self) -> None:
        self._vcf.close()
        if self._owns_reference and hasattr(self.reference, "close"):
            self.reference.close()

    def __enter__(self) -> VariantReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_variants(vcf: str | os.PathLike, fasta: Any = None, *, ref_policy: RefPolicy = "error",
                  aliases: bool = False, left_align: bool = True,
                  on_skip: Callable[[SkippedAllele], None] | None = None) -> VariantReader:  # fmt: skip
    """Normalized variants of a VCF/BCF, one per ALT allele.

    Args:
        vcf: VCF (plain or bgzipped) or BCF.
        fasta: reference FASTA path or an object with ``fetch(contig, start, end)`` and ``lengths``; with it,
            REF is checked, contigs and positions are validated and indels are left-aligned.
        ref_policy: on a REF that disagrees with the reference: 'error' (InconsistentDataError), 'skip'
            (counted as ``ref_mismatch``), 'warn' (logged and yielded, trimmed only).
        aliases: match ``chr1``/``1`` and ``chrM``/``MT`` between the VCF and the reference.
        left_align: left-align indels against the reference (trim only when False).
        on_skip: called with a :class:`SkippedAllele` for every allele not yielded, in file order.
    """
    return VariantReader(vcf, fasta, ref_policy=ref_policy, aliases=aliases, left_align=left_align,
                         on_skip=on_skip)  # fmt: skip


def summarize_variants(path: str | os.PathLike, fasta: Any = None) -> dict[str, Any]:
    """Records and alleles read, variants by type and contig, every skip reason with its count (REF mismatches
    are a skip reason here: a summary reports, it does not abort)."""
    reader = read_variants(path, fasta, ref_policy="skip")
    for _ in reader:
        pass
    return reader.summary.as_dict()
