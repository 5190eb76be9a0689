"""The validating FASTA scan and the ``.fai`` files behind :class:`genolong.io.fasta.Fasta`.

One streaming pass over the (decompressed) bytes checks the whole file and yields the faidx records (name,
length, offset, linebases, linebytes), so a file is validated whenever its index is built. The scan is
vectorised with numpy over blocks of whole lines; only header lines are visited in Python.

Rules (each breach is a :class:`MalformedInputError` naming the file and the 1-based line): the first
non-blank line is a ``>`` header (a leading ``@`` means FASTQ); names (header text up to the first whitespace)
are non-empty and unique; within a record every line but the last has the width of the first, and blank lines
may only end a record; sequence bytes are IUPAC letters of either case (protein-only letters are reported as
protein); line endings are LF throughout or CRLF throughout (htslib reads CRLF correctly; CR-only and mixed
endings are rejected); at least one record. Records with no sequence are kept, with length 0. A bgzip file
must end with the BGZF end-of-file block (without it, it was cut short).

:func:`index_mismatch` checks an existing ``.fai`` (and ``.gzi``) against its file without rescanning it.
"""

from __future__ import annotations

import bisect
import contextlib
import gzip
import logging
import os
import struct
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
NL, CR, GT, SPACE, TAB = 10, 13, ord(">"), ord(" "), ord("\t")
_OTHER_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
_GAP, _RNA = "alignment gaps are not bases", "RNA: write U as T"
_HINTS = {"-": _GAP, ".": _GAP, "U": _RNA, "u": _RNA, " ": "a space in a sequence line", "\t": "a tab"}
_GC = np.zeros(256, bool)
_GC[list(b"GCSgcs")] = True  # S is G or C
_N = np.zeros(256, bool)
_N[list(b"Nn")] = True
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")  # SAM spec, 4.1.2
UTF8_BOM = b"\xef\xbb\xbf"
BGZF_BLOCK = 1 << 16  # the most bytes a BGZF block holds, compressed or not


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
    if len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC":
        _require_bgzf_eof(path)
        return "bgzip"
    return "gzip"


def _require_bgzf_eof(path: str) -> None:
    """bgzip ends every file with an empty block; a file cut at a block boundary lacks it (gzip does not care)."""
    with open(path, "rb") as fh:
        fh.seek(max(0, os.fstat(fh.fileno()).st_size - len(BGZF_EOF)))
        tail = fh.read()
    if tail != BGZF_EOF:
        hint = "recompress it with bgzip, or copy or download it again"
        raise MalformedInputError("looks truncated: no BGZF end-of-file block", path=path, hint=hint)


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
        shorts = self._check_ragged(a, starts, lens, is_hdr, is_seq, width[rid])
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
            if a[starts[i] : starts[i] + 3].tobytes() == UTF8_BOM and self._lineno + i == 0:
                hint = "remove it, e.g. with: sed -i '1s/^\\xEF\\xBB\\xBF//'"
                self._fail("the file starts with a UTF-8 byte-order mark, not '>'", line, hint)
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

    def _check_ragged(self, a, starts, lens, is_hdr, is_seq, w) -> np.ndarray:
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
        self._check_trailing_space(a, starts, lens, is_seq, i)
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

    def _check_trailing_space(self, a, starts, lens, is_seq, upto: int) -> None:
        """Report whitespace ending a sequence line (up to line ``upto`` of the block) as such: it would
        otherwise read as ragged lines or as a bad letter. Called only on the way to another error."""
        filled = np.flatnonzero(is_seq[: upto + 1] & (lens[: upto + 1] > 0))
        last = a[starts[filled] + lens[filled] - 1]
        spaced = filled[(last == SPACE) | (last == TAB)]
        if spaced.size:
            line, hint = self._lineno + int(spaced[0]) + 1, "strip it, e.g. with: sed 's/[[:space:]]*$//'"
            self._fail("trailing whitespace after the bases of a sequence line", line, hint)

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
        self._check_trailing_space(a, starts, ends - starts - (self._eol - 1), is_seq, i)
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



def read_gzi(path: str) -> list[tuple[int, int]]:
    """Parse a ``.gzi``: (compressed, uncompressed) offsets of each BGZF block but the first; ValueError if
    its size disagrees with its count."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 8 or len(raw) != 8 + 16 * struct.unpack_from("<Q", raw)[0]:
        raise ValueError(f"{path}: not a .gzi file")
    flat = struct.unpack_from(f"<{(len(raw) - 8) // 8}Q", raw, 8)
    return list(zip(flat[::2], flat[1::2], strict=True))


# ---- checking an existing index against its file -----------------------------------------------------------

HEADER_REACH = 1 << 16  # how far before a record's first base its header line is looked for
TAIL_REACH = 4096  # how many line-ending bytes may follow the last record's bases
SAMPLED = 64  # records whose header line is checked, at most (the first and last among them)


class _Stale(Exception):
    """The index does not describe the file; the message says why."""


def index_mismatch(path: str, records: tuple[FaiRecord, ...], gzi: str | None = None) -> str | None:
    """Why ``records`` (and the ``gzi`` of a bgzip ``path``) do not describe ``path``, or None when they do.

    Cheap: it reads the header line before a sample of record offsets and the end of the file, so a stale
    index whose file was replaced, reordered, cut or grown is caught without a rescan."""
    try:
        with open(path, "rb") as fh:
            view = _BgzfView(fh, gzi) if gzi is not None else _PlainView(fh)
            sample = _sample(records)  # the first and the last among them
            for record in sample:
                _check_numbers(record)
            _check_tail(view, records[-1])
            for record in sample:
                _check_header(view, record)
    except _Stale as why:
        return str(why)
    except (OSError, ValueError, EOFError, zlib.error) as error:
        return f"{gzi or path} does not match it ({error})"
    return None


def _sample(records: tuple[FaiRecord, ...]) -> list[FaiRecord]:
    if len(records) <= SAMPLED:
        return list(records)
    step = (len(records) - 1) / (SAMPLED - 1)
    return [records[round(i * step)] for i in range(SAMPLED)]


def _check_numbers(r: FaiRecord) -> None:
    """Numbers a scan can write: a first base after a header, and lines of 1 or 2 bytes more than their bases."""
    if r.offset < 2 or r.length < 0 or (r.length and not 0 < r.linebases < r.linebytes <= r.linebases + 2):
        raise _Stale(f"record {r.name!r} has impossible numbers ({r.length}, {r.offset}, {r.linebases}, {r.linebytes})")


def _check_header(view: _PlainView | _BgzfView, record: FaiRecord) -> None:
    """The line before the record's first base must be its header, ``>name`` then whitespace or nothing."""
    if record.offset > view.size + 2 or (record.offset > view.size and record.length):  # +2: '>name' no EOL
        raise _Stale(f"record {record.name!r} starts at byte {record.offset}, past the end of the file")
    line = _line_before(view, record)
    if line[:1] != b">" or _name_of(line) != record.name:
        shown = line[:60].decode("utf-8", "replace")
        raise _Stale(f"the line before record {record.name!r} is {shown!r}, not its header")


def _line_before(view: _PlainView | _BgzfView, record: FaiRecord) -> bytes:
    """The line that ends just before the record's first base, without its line ending."""
    offset = record.offset
    end = min(offset, view.size)
    for reach in (1024, HEADER_REACH):  # most header lines are short
        start = max(0, end - reach)
        text = view.read(start, end - start)
        if offset <= view.size and not text.endswith(b"\n"):
            raise _Stale(f"record {record.name!r} does not start at the beginning of a line (byte {offset})")
        body = text.removesuffix(b"\n")
        cut = body.rfind(b"\n") + 1
        if cut or start == 0:
            return body[cut:].removesuffix(b"\r")
    raise _Stale(f"no header line within {HEADER_REACH} bytes before record {record.name!r}")


def _name_of(header: bytes) -> str:
    """As the scan (and htslib) names a record: the header text after '>' up to the first whitespace."""
    raw = header[1:]
    return "" if not raw or raw[:1].isspace() else raw.split(None, 1)[0].decode("utf-8", "replace")


def _check_tail(view: _PlainView | _BgzfView, last: FaiRecord) -> None:
    """After the last record's bases (or its header) only line endings may follow, at most TAIL_REACH bytes."""
    if last.length:
        full, rest = divmod(last.length - 1, last.linebases)
        end = last.offset + full * last.linebytes + rest + 1  # just past the last base
    else:
        end = min(last.offset, view.size)
    if not end <= view.size <= end + TAIL_REACH:
        raise _Stale(f"the file holds {view.size} bytes but the index ends record {last.name!r} at byte {end}")
    last_base = view.read(end - 1, 1) if last.length else b"A"
    if not last_base.isalpha() or view.read(end, view.size - end).strip(b"\r\n"):
        raise _Stale(f"the file does not end where the index ends record {last.name!r} (byte {end})")


class _PlainView:
    """The bytes of an uncompressed file, read by position."""

    def __init__(self, fh):
        self._fd = fh.fileno()
        self.size = os.fstat(self._fd).st_size

    def read(self, pos: int, n: int) -> bytes:
        return os.pread(self._fd, n, pos)


class _BgzfView:
    """The uncompressed bytes of a bgzip file, read by position through its ``.gzi`` (BGZF block starts).

    Building it checks the ``.gzi`` against the file: its last block must be the file's last data block."""

    def __init__(self, fh, gzi: str):
        self._fd, self._gzi = fh.fileno(), gzi
        self._blocks = [(0, 0), *read_gzi(gzi)]  # (compressed, uncompressed) offset of each block
        self._starts = [u for _, u in self._blocks]
        packed = os.fstat(self._fd).st_size - len(BGZF_EOF)
        last_c, last_u = self._blocks[-1]
        if not packed - BGZF_BLOCK <= last_c < packed:
            size = packed + len(BGZF_EOF)
            raise _Stale(f"{gzi} does not match it: its last block starts at byte {last_c} of {size}")
        self.size = last_u + len(self._inflate(last_c, None))

    def read(self, pos: int, n: int) -> bytes:
        i = bisect.bisect_right(self._starts, pos) - 1
        c, u = self._blocks[i]
        if pos - u >= BGZF_BLOCK:
            raise _Stale(f"{self._gzi} does not match it: no block starts within 64 KiB before byte {pos}")
        return self._inflate(c, pos + n - u)[pos - u :]

    def _inflate(self, c: int, need: int | None) -> bytes:
        """Decompress whole blocks from compressed offset ``c`` until ``need`` bytes (None: the end)."""
        out, pending = bytearray(), b""
        while need is None or len(out) < need:
            member = zlib.decompressobj(31)  # one gzip member, i.e. one BGZF block
            pending = pending or self._pread(c)
            if not pending:
                break
            while True:
                out += member.decompress(pending)
                c += len(pending) - len(member.unused_data)
                pending = member.unused_data
                if member.eof:
                    break
                if not (pending := self._pread(c)):
                    raise EOFError("a BGZF block is cut short")
        return bytes(out[:need] if need is not None else out)

    def _pread(self, c: int) -> bytes:
        return os.pread(self._fd, 2 * BGZF_BLOCK, c)


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
    """A temporary path beside ``dest``, moved onto ``dest`` (``os.replace``) when the block succeeds, with the
    mode a new file gets under the umask (``mkstemp`` makes it 0600, which would hide a shared index)."""
    with temp_beside(dest) as tmp:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)


def _umask() -> int:
    """The process umask: from /proc on Linux, else by setting it and setting it back (racy with threads)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
