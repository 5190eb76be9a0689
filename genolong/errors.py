"""The error hierarchy and the command line's exit-code contract.

Library code raises a subclass of :class:`GenoLongError` whose message names the file and the record, line or
offset at fault and says what to do. The CLI prints ``str(error)`` as one line on stderr (no traceback) and
exits with ``error.exit_code``:

==== ==========================================================================
code meaning
==== ==========================================================================
0    ok
1    internal bug (anything that is not a GenoLongError)
2    usage: bad arguments or options
3    input missing or unreadable
4    malformed input
5    inconsistent data: reference/contig/index/vocabulary mismatch
6    resource limit (memory, length, disk)
7    non-finite numbers (NaN/Inf in loss, gradients or outputs)
8    unsafe checkpoint refused
130  interrupted by SIGINT
143  terminated by SIGTERM
==== ==========================================================================
"""

from __future__ import annotations

import os

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class GenoLongError(Exception):
    """Base of every error genolong raises on purpose.

    ``GenoLongError("REF 'A' does not match the reference 'G'", path="x.vcf", line=12, hint="use --ref_policy skip")``
    reads ``x.vcf:12: REF 'A' does not match the reference 'G' (use --ref_policy skip)``.
    """

    exit_code = EXIT_INTERNAL

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike | None = None,
        line: int | None = None,
        record: str | None = None,
        hint: str | None = None,
    ):
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.line = line
        self.record = record
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path + (f":{self.line}" if self.line is not None else "")
        if self.record is not None:
            where = f"{where}: record {self.record}" if where else f"record {self.record}"
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return " ".join(text.split("\n"))  # the CLI contract is one line


class UsageError(GenoLongError):
    """Bad arguments or options (exit 2)."""

    exit_code = 2


class InputMissingError(GenoLongError):
    """A file that does not exist or cannot be read (exit 3)."""

    exit_code = 3


class MalformedInputError(GenoLongError):
    """A file that exists but breaks its format (exit 4)."""

    exit_code = 4


class InconsistentDataError(GenoLongError):
    """Inputs that disagree with each other: REF vs reference, unknown contig, stale index, vocabulary (exit 5)."""

    exit_code = 5


class ResourceLimitError(GenoLongError):
    """A request beyond a memory, length or disk limit (exit 6)."""

    exit_code = 6


class NonFiniteError(GenoLongError):
    """NaN or Inf where numbers must be finite (exit 7)."""

    exit_code = 7


class UnsafeCheckpointError(GenoLongError):
    """A checkpoint that cannot be loaded safely (exit 8)."""

    exit_code = 8
