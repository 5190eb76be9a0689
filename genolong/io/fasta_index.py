"""The validating FASTA scan and the ``.fai`` files behind :class:`genolong.io.fasta.Fasta`.

One streaming pass over the (decompressed) bytes checks the whole file and yields the faidx records (name,
length, offset, linebases, linebytes), so a file is validated whenever its index is built. The scan is
vectorised with numpy over blocks of whole lines; only header lines are visited in Python.

Rules (each breach is a :class:`MalformedInputError` naming the file and the 1-based line): the first
non-blank line is a ``>`` header (a leading ``@`` means FASTQ); names (header text up to the first whitespace)
are non-empty and unique; within a record every line but the last has the width of the first, and blank lines
may only end a record; sequence bytes are IUPAC letters of either case (protein-only letters are reported as
protein); line endings are LF throughout or CRLF throughout (htslib reads CRLF correctly; CR-only and mixed
endings are rejected); at least one record. Records with no sequence are kept, with length 0.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from genolong.errors import MalformedInputError
from genolong.tokenizers.alphabet import IS_IUPAC, IS_PROTEIN_ONLY, IS_SOFT_MASKED

log = logging.getLogger(__name__)

CHUNK = 8 << 20  # bytes read per step; a block is this plus the rest of its last line
NL, CR, GT = 10, 13, ord(">")
_OTHER_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
_GAP, _RNA = "alignment gaps are not bases", "RNA: write U as T"
_HINTS = {"-": _GAP, ".": _GAP, "U": _RNA, "u": _RNA, " ": "a space in a sequence line", "\t": "a tab"}
_GC = np.zeros(256, bool)
_GC[list(b"GCSgcs")] = True  # S is G or C
_N = np.zeros(256, bool)
_N[list(b"Nn")] = True


@dataclass(frozen=True)
class FaiRecord:
    """One line of a ``.fai``: offsets are bytes into the uncompressed file, lengths in bases."""

    name: str
    length: int
    offset: int  # byte offset of the record's first base
    linebases: int  # bases per full line (0 for an empty record)
    linebytes: int  # bytes per full line, line ending included

    def data_end(self) -> int:
        """Byte offset just past the record's last base."""
        if self.length == 0:
            return self.offset
        full, rest = divmod(self.length, self.linebases)
        return self.offset + full * self.linebytes + rest


def detect_compression(path: str) -> str:
    """``'plain'``, ``'gzip'`` or ``'bgzip'``, from the magic bytes (never the name)."""
    with open(path, "rb") as fh:
        head = fh.read(18)
    for magic, kind in _OTHER_MAGIC.items():
        if head.startswith(magic):
            raise MalformedInputError(f"compressed with {kind}", path=path, hint="use plain, gzip or bgzip")
    if head[:2] != b"\x1f\x8b":
        return "plain"
    # BGZF: a gzip member with FEXTRA whose extra subfield is 'BC' (SAM specification, section 4.1)
    return "bgzip" if len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC" else "gzip"


def iter_chunks(path: str, compression: str) -> Iterator[bytes]:
    """The uncompressed bytes of ``path`` in chunks of about ``CHUNK``."""
    try:
        with open(path, "rb") if compression == "plain" else gzip.open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise MalformedInputError(f"corrupt {compression} stream ({error})", path=path) from None


@dataclass
class _Open:
    """The record the scan is inside; it may span blocks."""

    name: str
    offset: int
    width: int = -1  # bases on the first sequence line, -1 before it is seen
    length: int = 0
    short_line: int = 0  # 1-based line of a line narrower than width (it must end the record); 0 if none
    short_len: int = 0
    counts: tuple[int, int, int] = (0, 0, 0)  # (GC, N, soft-masked) bases, when counting


class Scanner:
    """Validate FASTA bytes fed in order (``feed``) and return the faidx records (``finish``).

    With ``count=True`` it also keeps per record ``(gc, n, soft_masked)`` base counts in ``self.counts``.
    """

    def __init__(self, path: str | os.PathLike, count: bool = False):
        self.path, self.count = os.fspath(path), count
        self.records: list[FaiRecord] = []
        self.counts: list[tuple[int, int, int]] = []
        self._names: dict[str, int] = {}  # name -> 1-based header line
        self._pos = self._lineno = 0  # bytes and lines consumed
        self._eol = 0  # bytes in a line ending: 1 LF, 2 CRLF, 0 until the first line is seen
        self._pending: list[bytes] = []  # an unfinished last line
        self._cur: _Open | None = None
        self._bad = ~IS_IUPAC  # (256,) bytes not allowed on sequence lines
        self._valid = b""  # the bytes allowed on sequence lines, line endings included

    def _fail(self, message: str, line: int, hint: str | None = None, record: str | None = None):
        raise MalformedInputError(message, path=self.path, line=line, record=record, hint=hint)

    def feed(self, data: bytes) -> None:
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            lone = data.find(b"\r")
            if 0 <= lone < len(data) - 1:
                self._lone_cr(self._lineno + 1)
            self._pending.append(data)
            return
        block = b"".join([*self._pending, data[:cut]]) if self._pending else data[:cut]
        self._pending = [data[cut:]] if cut < len(data) else []
        self._scan(block)

    def finish(self) -> list[FaiRecord]:
        rest = b"".join(self._pending)
        if rest:  # a last line without a line ending
            self._pending = []
            self._scan(rest + (b"\r\n" if self._eol == 2 and not rest.endswith(b"\r") else b"\n"))
        if self._cur is not None:
            self._close()
        if not self.records:
            empty = self._lineno == 0
            self._fail("empty file" if empty else "no FASTA records (no line starts with '>')", 1)
        return self.records

    def _lone_cr(self, line: int):
        hint = "convert with: tr '\\r' '\\n'"
        self._fail("carriage return without a line feed (CR-only line endings)", line, hint)

    def _scan(self, block: bytes) -> None:
        a = np.frombuffer(block, np.uint8)  # (nbytes,), ends with '\n'
        ends = np.flatnonzero(a == NL)  # (nlines,) position of each line's '\n'
        starts = np.concatenate(([0], ends[:-1] + 1))
        self._check_eol(block, a, ends, starts)
        lens = ends - starts - (self._eol - 1)  # (nlines,) bytes before the line ending
        is_hdr = a[starts] == GT
        hdr = np.flatnonzero(is_hdr)
        rid = np.cumsum(is_hdr)  # (nlines,) record of each line: 0 the carried one, k the k-th header
        is_seq = ~is_hdr if self._cur is not None else ~is_hdr & (rid > 0)
        if self._cur is None:
            self._check_preamble(a, starts, lens, hdr[0] if hdr.size else ends.size)
        width = self._widths(hdr, lens, is_hdr)
        shorts = self._check_ragged(lens, is_hdr, is_seq, width[rid])
        if not self._only_headers_break_the_alphabet(block, starts, ends, hdr):
            self._check_letters(a, ends, starts, is_seq, rid, hdr)
        nrec = hdr.size + 1
        length = np.bincount(rid[is_seq], weights=lens[is_seq], minlength=nrec).astype(np.int64)
        counts = self._count(a, starts, ends, hdr, is_seq, rid) if self.count else None
        self._emit(a, starts, ends, hdr, rid, width, length, counts, shorts, lens)
        self._pos += a.size
        self._lineno += ends.size

    def _check_eol(self, block: bytes, a: np.ndarray, ends: np.ndarray, starts: np.ndarray) -> None:
        if self._eol == 0:
            self._eol = 2 if ends[0] > 0 and a[ends[0] - 1] == CR else 1
            self._bad[NL] = False
            self._bad[CR] = self._eol == 1
            self._valid = np.flatnonzero(~self._bad).astype(np.uint8).tobytes()
        if self._eol == 1 and b"\r" not in block:
            return
        cr = np.flatnonzero(a == CR)
        if cr.size:
            lone = cr[a[cr + 1] != NL]
            if lone.size:
                self._lone_cr(self._lineno + int(np.searchsorted(ends, lone[0])) + 1)
        if cr.size != (ends.size if self._eol == 2 else 0):
            has_cr = (ends > starts) & (a[ends - 1] == CR)
            i = int(np.flatnonzero(has_cr if self._eol == 1 else ~has_cr)[0])
            first, this = ("LF", "CRLF") if self._eol == 1 else ("CRLF", "LF")
            message = f"mixed line endings: this line ends with {this}, the first line with {first}"
            self._fail(message, self._lineno + i + 1)

    def _check_preamble(self, a, starts, lens, first_header: int) -> None:
        text = np.flatnonzero(lens[:first_header] > 0)
        if text.size:
            i = int(text[0])
            line = self._lineno + i + 1
            if a[starts[i]] == ord("@") and self._lineno + i == 0:
                self._fail("FASTQ, not FASTA (the file starts with '@')", line, "convert with: seqtk seq -a")
            self._fail("text before the first '>' header", line, "a FASTA file starts with a '>name' line")

    def _widths(self, hdr: np.ndarray, lens: np.ndarray, is_hdr: np.ndarray) -> np.ndarray:
        """(nrec,) the width of each record's first sequence line (-1 while unknown)."""
        width = np.full(hdr.size + 1, -1, np.int64)
        if self._cur is not None:
            width[0] = self._cur.width if self._cur.width >= 0 or is_hdr[0] else lens[0]
        nxt = hdr + 1
        ok = nxt < lens.size
        ok[ok] = ~is_hdr[nxt[ok]]
        width[1:][ok] = lens[nxt[ok]]
        return width

    def _check_ragged(self, lens, is_hdr, is_seq, w) -> np.ndarray:
        """Check line widths; return (nlines,) bool, the lines narrower than their record's width."""
        idx = np.arange(lens.size)
        short = is_seq & (lens < w)
        # line positions; the carried record's header sits at -2 and its short line, if any, at -1
        carried = -1 if self._cur is not None and self._cur.short_line else -3
        hdr_pos = np.maximum.accumulate(np.where(is_hdr, idx, -2))
        last_short = np.maximum(np.maximum.accumulate(np.where(short, idx, -3)), carried)
        prev_short = np.concatenate(([carried], last_short[:-1]))
        too_long = is_seq & (lens > w)
        after_short = is_seq & (lens > 0) & (prev_short > hdr_pos)
        bad = np.flatnonzero(too_long | after_short)
        if not bad.size:
            return short
        i = int(bad[0])
        line = self._lineno + i + 1
        j = int(prev_short[i])
        if j == -1:
            j_line, j_len = self._cur.short_line, self._cur.short_len
        else:
            j_line, j_len = self._lineno + j + 1, int(lens[j])
        if w[i] == 0 or (after_short[i] and j_len == 0):
            self._fail("sequence after a blank line (blank lines may only end a record)", line)
        if too_long[i]:
            self._fail(f"ragged lines: {lens[i]} bases on this line, {w[i]} on the record's first", line)
        self._fail(
            f"ragged lines: {j_len} bases, fewer than the record's {w[i]}, but not the last line", j_line
        )

    def _only_headers_break_the_alphabet(self, block: bytes, starts, ends, hdr) -> bool:
        """A fast pre-check (``bytes.translate`` runs at about 1 GB/s, the table lookup at a third of that):
        True when every byte outside the alphabet is on a header line."""
        if hdr.size > 256:
            return False
        outside = len(block.translate(None, self._valid))
        on_headers = sum(len(block[starts[i] : ends[i]].translate(None, self._valid)) for i in hdr.tolist())
        return outside == on_headers

    def _check_letters(self, a, ends, starts, is_seq, rid, hdr) -> None:
        bad = np.flatnonzero(self._bad[a])  # header bytes are in here too; few
        if not bad.size:
            return
        lines = np.searchsorted(ends, bad)
        keep = is_seq[lines]
        if not keep.any():
            return
        p, i = int(bad[keep][0]), int(lines[keep][0])
        char, col, k = chr(a[p]), p - int(starts[i]) + 1, int(rid[i])
        name = self._cur.name if k == 0 else self._header_name(a, starts[hdr[k - 1]], ends[hdr[k - 1]])
        line = self._lineno + i + 1
        if IS_PROTEIN_ONLY[a[p]]:
            message = f"protein, not DNA: {char!r} at column {col} is a protein-only letter"
            self._fail(message, line, "genolong reads nucleotide FASTA", record=name)
        message = f"{char!r} at column {col} is not an IUPAC nucleotide letter"
        self._fail(message, line, _HINTS.get(char), name)

    def _count(self, a, starts, ends, hdr, is_seq, rid) -> np.ndarray:
        """(nrec, 3) GC, N and soft-masked bases per record in this block (validated bytes only)."""
        lo = np.concatenate(([0], ends[hdr] + 1))  # (nrec,) byte span of each record's sequence lines
        hi = np.concatenate((starts[hdr], [a.size]))
        if hdr.size < 64:  # a few long records: whole-span compares are fastest
            return np.array([_base_counts(a[i:j]) for i, j in zip(lo.tolist(), hi.tolist(), strict=True)])
        out = np.zeros((hdr.size + 1, 3), np.int64)
        for c, table in enumerate((_GC, _N, IS_SOFT_MASKED)):
            per_line = np.add.reduceat(table[a], starts, dtype=np.int64)
            out[:, c] = np.bincount(rid[is_seq], weights=per_line[is_seq], minlength=hdr.size + 1)
        return out

    def _header_name(self, a: np.ndarray, start: int, end: int) -> str:
        raw = a[start + 1 : end + 1 - self._eol].tobytes()  # as htslib: up to the first whitespace
        return "" if not raw or raw[:1].isspace() else raw.split(None, 1)[0].decode("utf-8", "replace")

    def _emit(self, a, starts, ends, hdr, rid, width, length, counts, short, lens) -> None:
        """Fold this block's per-record numbers into the carried record and open each new one."""
        short_idx = np.flatnonzero(short)
        recs, first = np.unique(rid[short_idx], return_index=True)
        firsts = dict(zip(recs.tolist(), short_idx[first].tolist(), strict=True))  # record -> 1st short line
        for k in range(hdr.size + 1):
            if k > 0:
                if self._cur is not None:
                    self._close()
                self._open(a, int(hdr[k - 1]), int(starts[hdr[k - 1]]), int(ends[hdr[k - 1]]))
            cur = self._cur
            if cur is None:
                continue
            cur.width = int(width[k])
            cur.length += int(length[k])
            if self.count:
                cur.counts = tuple(int(x) + int(y) for x, y in zip(cur.counts, counts[k], strict=True))
            if not cur.short_line and k in firsts:
                cur.short_line, cur.short_len = self._lineno + firsts[k] + 1, int(lens[firsts[k]])

    def _open(self, a: np.ndarray, i: int, start: int, end: int) -> None:
        line = self._lineno + i + 1
        name = self._header_name(a, start, end)
        if not name:
            self._fail("empty record name after '>'", line)
        if name in self._names:
            self._fail(f"duplicate record name {name!r} (first at line {self._names[name]})", line)
        self._names[name] = line
        self._cur = _Open(name, offset=self._pos + end + 1)

    def _close(self) -> None:
        c, w = self._cur, max(self._cur.width, 0)
        self.records.append(FaiRecord(c.name, c.length, c.offset, w, w + self._eol if w else 0))
        self.counts.append(c.counts)
        self._cur = None


def _base_counts(seq: np.ndarray) -> tuple[int, int, int]:
    """(GC, N, soft-masked) bases in validated sequence bytes (line endings count as none of them)."""
    gc = sum(np.count_nonzero(seq == c) for c in b"GCSgcs")
    return gc, np.count_nonzero(seq == 78) + np.count_nonzero(seq == 110), np.count_nonzero(seq >= 97)


def scan_file(path: str, compression: str, count: bool = False) -> Scanner:
    """Validate the whole file; the finished scanner holds ``records`` (and ``counts`` when asked)."""
    scanner = Scanner(path, count=count)
    for chunk in iter_chunks(path, compression):
        scanner.feed(chunk)
    scanner.finish()
    return scanner


def write_fai(records: list[FaiRecord], dest: str) -> None:
    """Write a ``.fai`` atomically: a temporary file in the same folder, then ``os.replace``."""
    text = "".join(f"{r.name}\t{r.length}\t{r.offset}\t{r.linebases}\t{r.linebytes}\n" for r in records)
    with atomic_path(dest) as tmp, open(tmp, "w") as fh:
        fh.write(text)


def read_fai(path: str) -> list[FaiRecord]:
    """Parse a ``.fai``; ValueError if any line is not five tab-separated fields."""
    with open(path) as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh]
    return [FaiRecord(n, int(a), int(b), int(c), int(d)) for n, a, b, c, d in rows]


@contextmanager
def temp_beside(dest: str) -> Iterator[str]:
    """A fresh temporary path in ``dest``'s folder, removed when the block ends if it is still there."""
    folder, base = os.path.split(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextmanager
def atomic_path(dest: str) -> Iterator[str]:
    """A temporary path beside ``dest``, moved onto ``dest`` (``os.replace``) when the block succeeds."""
    with temp_beside(dest) as tmp:
        yield tmp
        os.replace(tmp, dest)
