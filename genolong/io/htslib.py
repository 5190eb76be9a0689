"""htslib's messages, captured: htslib writes warnings and errors straight to file descriptor 2.

:class:`HtslibLog` redirects fd 2 to a temporary file while records are pulled, and
:func:`parse_htslib_messages` turns what was written into (level, text) pairs the readers report with file and
line (or fold into a :class:`~genolong.errors.MalformedInputError`).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from typing import IO

_HTS_LINE = re.compile(r"^\[([EWID])::[^\]]*\]\s*(.*)$")
# htslib messages that say nothing to a user of these readers (which stream and need no index)
_DROP = ("Missing headers may cause later processing to fail", "Could not retrieve index file",
         "Could not load local index file")  # fmt: skip
_STRIP = " (Quick workaround: index the file with tabix.)"


class HtslibLog:
    """Context manager sending fd 2 to a temporary file; ``poll()`` returns the (level, text) messages written
    since the last poll, level being 'E' (error) or 'W' (warning, info). Keep the block short and free of
    user code: whatever else the process writes to fd 2 meanwhile (another thread) is captured too.

    Re-entrant and thread-safe: one lock is held while fd 2 is redirected, so concurrent readers take turns
    and only the outermost block swaps fd 2 (an inner block reads the same file)."""

    _lock = threading.RLock()
    _depth = 0
    _shared: tuple[IO[bytes], int | None] | None = None  # (temporary file, saved fd 2) of the outermost block

    def __enter__(self) -> HtslibLog:
        HtslibLog._lock.acquire()
        if HtslibLog._depth == 0:
            sys.stderr.flush()
            tmp = tempfile.TemporaryFile()
            try:
                saved: int | None = os.dup(2)
            except OSError:  # no fd 2 to capture (a daemon): htslib's messages go nowhere either way
                saved = None
            else:
                os.dup2(tmp.fileno(), 2)
            HtslibLog._shared = (tmp, saved)
        HtslibLog._depth += 1
        self._tmp = HtslibLog._shared[0]
        self._read = os.fstat(self._tmp.fileno()).st_size
        return self

    def poll(self) -> list[tuple[str, str]]:
        size = os.fstat(self._tmp.fileno()).st_size
        if size == self._read:
            return []
        text = os.pread(self._tmp.fileno(), size - self._read, self._read).decode(errors="replace")
        self._read = size
        return parse_htslib_messages(text)

    def __exit__(self, *exc: object) -> None:
        try:
            HtslibLog._depth -= 1
            if HtslibLog._depth == 0:
                tmp, saved = HtslibLog._shared
                if saved is not None:
                    os.dup2(saved, 2)
                    os.close(saved)
                tmp.close()
                HtslibLog._shared = None
        finally:
            HtslibLog._lock.release()


def parse_htslib_messages(text: str) -> list[tuple[str, str]]:
    """``[W::vcf_parse] Contig 'x' is not defined ...`` lines -> [('W', "Contig 'x' is not defined ...")]."""
    out: list[list[str]] = []
    for raw in text.splitlines():
        match = _HTS_LINE.match(raw)
        if match:
            out.append(["E" if match.group(1) == "E" else "W", match.group(2)])
        elif raw.strip():
            out[-1:] = [[out[-1][0], f"{out[-1][1]} {raw.strip()}"]] if out else [["W", raw.strip()]]
    kept = [(lv, t.replace(_STRIP, "").strip()) for lv, t in out if not any(d in t for d in _DROP)]
    return [(lv, t) for lv, t in kept if t]
