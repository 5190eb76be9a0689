"""Random access to reference FASTA: :class:`Fasta`, padded windows, and the ``genolong inspect`` summary.

Coordinates are 0-based, half-open: ``fa.fetch("chr1", 0, 10)`` is the first ten bases. Sequences come back
as ``str`` with their case exactly as in the file (soft-masking is a tokenizer policy). Reads go through
htslib (``pysam.FastaFile``) over a ``.fai`` index (and ``.gzi`` for bgzip), which genolong builds, after
validating every line, when it is missing or stale (:mod:`genolong.io.fasta_index`). An index is stale when it
is older than the file or, whatever its date, does not fit it: the file's size and the header line before a
sample of record offsets are checked on every open (through the ``.gzi`` for bgzip), at the cost of a few
reads. Index files get the mode the umask gives new files. Compression is told by magic bytes:

- plain and bgzip files are read in place; the index goes beside the file or, when that folder is not
  writable (or has no write bits, even for root), into the cache folder: ``$GENOLONG_CACHE_DIR``, else
  ``$XDG_CACHE_HOME/genolong``, else ``~/.cache/genolong``;
- plain gzip cannot be read at random, so it is decompressed once into the cache folder (logged, with the
  advice to ``bgzip`` it); later opens of the same unchanged file reuse that copy.

A :class:`Fasta` holds one htslib handle per process: it reopens the file when ``os.getpid()`` changes and
pickles without its handle, so each torch DataLoader worker reads through its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import operator
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pysam

from genolong.errors import InconsistentDataError, InputMissingError, MalformedInputError, ResourceLimitError
from genolong.io.fasta_index import (
    FaiRecord,
    Scanner,
    atomic_path,
    detect_compression,
    index_mismatch,
    iter_chunks,
    read_fai,
    scan_file,
    temp_beside,
    write_fai,
)

log = logging.getLogger(__name__)

_MITO = ("chrM", "MT", "chrMT", "M")


def alias_candidates(name: str) -> list[str]:
    """Other spellings of a contig name: ``chr1`` <-> ``1``, ``chrX`` <-> ``X``, ``chrM`` <-> ``MT``."""
    if name in _MITO:
        return [m for m in _MITO if m != name]
    return [name[3:]] if name.startswith("chr") and len(name) > 3 else ["chr" + name]


@dataclass(frozen=True)
class Window:
    """A window that may run past the ends of its contig; the part outside is ``N``, counted in the pads."""

    contig: str  # the name in the file (after alias resolution)
    start: int  # as requested, 0-based; may be negative
    end: int  # as requested, exclusive; may exceed the contig length
    sequence: str  # end - start letters: left_pad N's, the contig's bases, right_pad N's
    left_pad: int  # N's standing for positions before 0
    right_pad: int  # N's standing for positions at or after the contig length


@dataclass(frozen=True)
class IndexedFile:
    """What htslib opens: ``source`` (the FASTA, or the decompressed copy of a plain gzip) and its index."""

    source: str
    fai: str
    gzi: str | None
    compression: str  # of the user's file: plain, gzip or bgzip
    records: tuple[FaiRecord, ...]


def cache_dir() -> str:
    """``$GENOLONG_CACHE_DIR``, else ``$XDG_CACHE_HOME/genolong``, else ``~/.cache/genolong``."""
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("GENOLONG_CACHE_DIR") or os.path.join(xdg, "genolong")


def _cache_slot(path: str) -> str:
    key = hashlib.sha1(os.path.realpath(path).encode()).hexdigest()[:16]
    return os.path.join(cache_dir(), "fasta", key)


def require_file(path: str) -> None:
    """InputMissingError (exit 3) unless ``path`` is a regular file, saying what it is instead."""
    if os.path.isdir(path):
        raise InputMissingError("is a directory, not a FASTA file", path=path, hint="pass the FASTA file in it")
    if not os.path.exists(path):
        raise InputMissingError("no such file", path=path)
    if not os.path.isfile(path):
        raise InputMissingError("not a regular file", path=path)


def ensure_index(path: str) -> IndexedFile:
    """Find a fresh index for ``path`` or build one (validating the file): beside it, else in the cache."""
    compression = detect_compression(path)
    if compression == "gzip":
        return _decompressed_copy(path)
    slot = os.path.join(_cache_slot(path), os.path.basename(path))
    places = [(path + ".fai", path + ".gzi"), (slot + ".fai", slot + ".gzi")]
    places = [(fai, gzi if compression == "bgzip" else None) for fai, gzi in places]
    for fai, gzi in places:
        if (records := load_fresh(path, fai, gzi)) is not None:
            return IndexedFile(path, fai, gzi, compression, records)
    log.info("indexing %s (validating every line)", path)
    scanned = os.stat(path).st_mtime_ns
    records = tuple(scan_file(path, compression).records)
    if not _writable(os.path.dirname(os.path.abspath(path))):
        places = places[1:]
    for fai, gzi in places:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(fai)), exist_ok=True)
            if gzi is not None:
                _write_gzi(path, records, gzi)
            write_fai(list(records), fai)
            _not_older(scanned, fai, gzi)
            return IndexedFile(path, fai, gzi, compression, records)
        except OSError as error:
            log.info("cannot write %s (%s); trying the cache folder", fai, error.strerror or error)
    hint = "set GENOLONG_CACHE_DIR to a writable folder"
    raise ResourceLimitError("cannot write an index beside the file nor in the cache", path=path, hint=hint)


def _not_older(mtime_ns: int, *paths: str | None) -> None:
    """Date new index files no earlier than the FASTA they were built from (whose clock may run ahead, as on
    network file systems), so that they are not taken for stale at the next open."""
    for p in paths:
        if p is not None and os.stat(p).st_mtime_ns < mtime_ns:
            os.utime(p, ns=(mtime_ns, mtime_ns))


def _writable(folder: str) -> bool:
    """Writable and not marked read-only (root may write into a folder without write bits; we do not)."""
    return os.access(folder, os.W_OK) and bool(os.stat(folder).st_mode & 0o222)


def load_fresh(fasta: str, fai: str, gzi: str | None) -> tuple[FaiRecord, ...] | None:
    """The records in ``fai`` if it (and ``gzi``) is not older than ``fasta`` and agrees with it, or None."""
    try:
        newest = os.stat(fasta).st_mtime_ns
        if any(os.stat(p).st_mtime_ns < newest for p in (fai, gzi) if p is not None):
            log.info("index %s is older than %s; rebuilding it", fai, fasta)
            return None
        records = tuple(read_fai(fai))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        log.info("index %s is unreadable; rebuilding it", fai)
        return None
    why = index_mismatch(fasta, records, gzi) if records else "it lists no records"
    if why is not None:
        log.warning("index %s does not match %s: %s; rebuilding it", fai, fasta, why)
        return None
    return records


def _write_gzi(path: str, records: tuple[FaiRecord, ...], gzi: str) -> None:
    """Let htslib write the ``.gzi`` (BGZF block offsets); its ``.fai`` must agree with the scan's."""
    with atomic_path(gzi) as tmp_gzi, temp_beside(gzi) as tmp_fai:
        try:
            pysam.faidx(path, "--fai-idx", tmp_fai, "--gzi-idx", tmp_gzi)
        except pysam.SamtoolsError as error:
            raise MalformedInputError(f"htslib cannot index it: {error}", path=path) from None
        if read_fai(tmp_fai) != [r for r in records if r.length]:  # htslib leaves empty records out
            hint = "please report this file to the genolong developers"
            raise InconsistentDataError("htslib and genolong index it differently", path=path, hint=hint)


def _decompressed_copy(path: str) -> IndexedFile:
    """Plain gzip has no random access: decompress it once into the cache (validating it on the way)."""
    st = os.stat(path)
    stem = os.path.basename(path).removesuffix(".gz")
    copy = os.path.join(_cache_slot(path), f"{stem}.{st.st_size}-{st.st_mtime_ns}")
    if (records := load_fresh(copy, copy + ".fai", None)) is not None:
        return IndexedFile(copy, copy + ".fai", None, "gzip", records)
    advice = "bgzip it to read it in place"
    log.warning("%s is gzip, not bgzip: decompressing it once to %s to read it (%s)", path, copy, advice)
    os.makedirs(os.path.dirname(copy), exist_ok=True)
    scanner = Scanner(path)
    with atomic_path(copy) as tmp, open(tmp, "wb") as out:
        for chunk in iter_chunks(path, "gzip"):
            scanner.feed(chunk)
            out.write(chunk)
        records = tuple(scanner.finish())
    write_fai(list(records), copy + ".fai")
    slot = os.path.dirname(copy)
    for old in os.listdir(slot):  # copies of earlier versions of the file; temporary files start with '.'
        if not old.startswith((os.path.basename(copy), ".")):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(slot, old))
    return IndexedFile(copy, copy + ".fai", None, "gzip", records)


class Fasta:
    """A FASTA file (plain, gzip or bgzip) read by 0-based half-open coordinates.

    >>> with Fasta("ref.fa", aliases=True) as fa:  # doctest: +SKIP
    ...     fa.fetch("chr1", 1000, 1010)  # 'ACGTacgtNN': case as in the file
    ...     fa.fetch_window("chr1", -5, 5)  # Window(sequence='NNNNNACGTa', left_pad=5, right_pad=0, ...)

    ``aliases=True`` lets ``chr1``/``1``, ``chrX``/``X`` and ``chrM``/``MT`` stand for each other when only
    one is in the file (each resolution is logged once). Unknown contigs and out-of-range coordinates raise
    :class:`~genolong.errors.InconsistentDataError`; only :meth:`fetch_window` pads, and says by how much.
    """

    def __init__(self, path: str | os.PathLike, *, aliases: bool = False):
        self.path = os.fspath(path)
        self.aliases = aliases
        require_file(self.path)
        try:
            index = ensure_index(self.path)
        except PermissionError as error:
            raise InputMissingError(f"cannot read it ({error.strerror})", path=self.path) from None
        self._lengths = {r.name: r.length for r in index.records}
        self._index = dataclasses.replace(index, records=())  # what a worker needs to reopen, kept small
        self._resolved: dict[str, str] = {}  # alias -> name in the file
        self._handle: pysam.FastaFile | None = None
        self._pid = -1  # the process that opened _handle
        self._closed = False
        self._reader()

    @property
    def lengths(self) -> Mapping[str, int]:
        """Contig name -> length in bases, in file order (read-only)."""
        return MappingProxyType(self._lengths)

    @property
    def names(self) -> tuple[str, ...]:
        """Contig names in file order."""
        return tuple(self._lengths)

    @property
    def compression(self) -> str:
        """``'plain'``, ``'gzip'`` or ``'bgzip'``, from the file's magic bytes."""
        return self._index.compression

    def __contains__(self, contig: object) -> bool:
        if contig in self._lengths:
            return True
        aliases = alias_candidates(contig) if self.aliases and isinstance(contig, str) else []
        return any(a in self._lengths for a in aliases)

    def __len__(self) -> int:
        return len(self._lengths)

    def __iter__(self) -> Iterator[str]:
        return iter(self._lengths)

    def resolve(self, contig: str) -> str:
        """The file's name for ``contig``: itself or, with ``aliases=True``, an alias; else
        InconsistentDataError listing a few known names."""
        if contig in self._lengths:
            return contig
        if contig in self._resolved:
            return self._resolved[contig]
        alias = next((c for c in alias_candidates(contig) if c in self._lengths), None)
        if alias is not None and self.aliases:
            log.info("%s: contig %r is not in the file; reading %r for it", self.path, contig, alias)
            self._resolved[contig] = alias
            return alias
        known = ", ".join(map(repr, self.names[:5])) + (", ..." if len(self) > 5 else "")
        hint = f"pass aliases=True to read {alias!r} for it" if alias is not None else None
        message = f"unknown contig {contig!r}; the file has {len(self)} contigs ({known})"
        raise InconsistentDataError(message, path=self.path, hint=hint)

    def fetch(self, contig: str, start: int = 0, end: int | None = None) -> str:
        """Bases ``[start, end)`` of ``contig`` (the whole contig by default), case as in the file.

        Raises InconsistentDataError unless ``0 <= start <= end <= length``; :meth:`fetch_window` pads.
        """
        name = contig if contig in self._lengths else self.resolve(contig)
        length = self._lengths[name]
        if end is None:
            end = length
        if not 0 <= start <= end <= length:
            message = f"[{start}, {end}) is outside contig {name!r} of length {length}"
            raise InconsistentDataError(
                message, path=self.path, hint="fetch_window() pads with N past the ends"
            )
        handle = self._handle
        if handle is None or self._pid != os.getpid():
            handle = self._reader()
        return handle.fetch(name, start, end)

    def fetch_window(self, contig: str, start: int, end: int) -> Window:
        """Bases ``[start, end)``, with ``N`` for the positions before 0 or past the contig's end.

        ``len(window.sequence) == end - start``; the window must overlap the contig (or be empty).
        """
        name, start, end = self.resolve(contig), operator.index(start), operator.index(end)
        length = self._lengths[name]
        lo, hi = max(start, 0), min(end, length)  # the part inside the contig
        if end < start or (end > start and lo >= hi):
            message = f"window [{start}, {end}) does not overlap contig {name!r} of length {length}"
            raise InconsistentDataError(message, path=self.path)
        if end == start:
            return Window(name, start, end, "", 0, 0)
        left, right = lo - start, end - hi
        core = self.fetch(name, lo, hi)
        return Window(
            name, start, end, "N" * left + core + "N" * right if left or right else core, left, right
        )

    def _reader(self) -> pysam.FastaFile:
        """The htslib handle of this process, opened on first use and again after a fork."""
        if self._closed:
            raise ValueError(f"I/O on a closed Fasta ({self.path})")
        if self._handle is None or self._pid != os.getpid():
            idx = self._index
            self._handle = pysam.FastaFile(
                idx.source, filepath_index=idx.fai, filepath_index_compressed=idx.gzi
            )
            self._pid = os.getpid()
        return self._handle

    def close(self) -> None:
        """Close the htslib handle; later reads raise ValueError."""
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle, self._closed = None, True

    def __enter__(self) -> Fasta:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"], state["_pid"] = None, -1  # never share an htslib handle between processes
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        closed = ", closed" if self._closed else ""
        return f"Fasta({self.path!r}, {len(self)} contigs, {self.compression}{closed})"


def summarize_fasta(path: str | os.PathLike) -> dict[str, Any]:
    """Validate ``path`` and summarise it for ``genolong inspect`` (JSON-ready); writes nothing.

    Keys: compression, n_contigs, total_length, gc_fraction (over non-N bases), n_fraction,
    soft_masked_fraction, and contigs: per record, name, length and the same three fractions.
    """
    path = os.fspath(path)
    require_file(path)
    scan = scan_file(path, compression := detect_compression(path), count=True)
    pairs = zip(scan.records, scan.counts, strict=True)
    contigs = [{"name": r.name, "length": r.length, **_fractions(r.length, *c)} for r, c in pairs]
    total = sum(r.length for r in scan.records)
    gc, n, soft = (sum(c[i] for c in scan.counts) for i in range(3))
    head = {"compression": compression, "n_contigs": len(contigs), "total_length": total}
    return head | _fractions(total, gc, n, soft) | {"contigs": contigs}


def _fractions(length: int, gc: int, n: int, soft: int) -> dict[str, float | None]:
    """GC over non-N bases (None when there are none), N and soft-masked over all bases."""
    called = length - n
    return {
        "gc_fraction": round(gc / called, 6) if called else None,
        "n_fraction": round(n / length, 6) if length else 0.0,
        "soft_masked_fraction": round(soft / length, 6) if length else 0.0,
    }
