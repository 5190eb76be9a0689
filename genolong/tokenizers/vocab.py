"""The fixed single-base vocabulary, the input policies, and the vectorised byte -> id step all tokenizers
share.

Ids that other parts of genolong rely on (never renumber them)::

    [PAD]=0 [UNK]=1 [BOS]=2 [EOS]=3 [MASK]=4 A=5 C=6 G=7 T=8 N=9
    with iupac="keep": R=10 Y=11 S=12 W=13 K=14 M=15 B=16 D=17 H=18 V=19

Policies, applied while bytes become ids:

- ``soft_mask``: ``"fold"`` reads lowercase (soft-masked) bases as uppercase; the mask can be returned beside
  the ids and handed back to ``decode`` to restore the case. ``"error"`` refuses lowercase.
- ``iupac``: ``"to_n"`` turns every ambiguity code into N, ``"keep"`` gives each its own token, ``"error"``
  refuses them (N itself is always accepted).
- ``rna``: ``U`` is read as T only when the caller says the input is RNA; otherwise it is an error.

Anything else (protein letters, digits, gaps, whitespace) raises :class:`InvalidSequenceError` naming the
first offending position and character: nothing becomes [UNK] silently.

Speed: a 256-entry byte table applied with ``bytes.translate`` over cache-sized chunks written straight into
the output array; a ``memchr`` on each translated chunk finds refused bytes. On one core this runs at about
1 GB/s (see ``benchmarks/bench_tokenizers.py``); numpy fancy indexing is several times slower because it
widens the indices to 64 bits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genolong.errors import MalformedInputError, UsageError
from genolong.tokenizers.alphabet import GAPS, IUPAC_BASES, PROTEIN_ONLY

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[BOS]", "[EOS]", "[MASK]")
PAD_ID, UNK_ID, BOS_ID, EOS_ID, MASK_ID = range(5)
BASE_TOKENS = "ACGTN"  # ids 5..9
AMBIGUITY_TOKENS = "RYSWKMBDHV"  # ids 10..19 with iupac="keep"
FIRST_BASE_ID = len(SPECIAL_TOKENS)

SOFT_MASK_POLICIES = ("fold", "error")
IUPAC_POLICIES = ("to_n", "keep", "error")

INVALID = 255  # table entry for a byte that is not accepted under the active policies
_CHUNK = 1 << 16  # bytes per translate step: the chunk and its copies stay in L2 cache
_INVALID_BYTE = bytes([INVALID])


class InvalidSequenceError(MalformedInputError, ValueError):
    """A sequence character the tokenizer's policies do not accept (exit code 4; also a ValueError).

    ``position`` (0-based), ``char`` and ``reason`` are kept as attributes besides the one-line message.
    """

    def __init__(self, char: str, position: int, reason: str, count: int = 1, **where: Any):
        self.char, self.position, self.reason, self.count = char, position, reason, count
        more = f"; {count - 1} more invalid character(s) follow" if count > 1 else ""
        super().__init__(f"invalid character {char!r} at position {position}: {reason}{more}", **where)

    def shifted(self, offset: int, **where: Any) -> InvalidSequenceError:
        """The same error for a sequence that starts ``offset`` characters later in a longer text; ``where``
        adds ``path``/``line``/``record`` (e.g. ``err.shifted(window_start, path=fasta, record=contig)``)."""
        return InvalidSequenceError(self.char, self.position + offset, self.reason, self.count, **where)


class TokenizerUsageError(UsageError, ValueError):
    """Bad tokenizer arguments: unknown policy, bad interval, ids outside the vocabulary (exit code 2)."""


def check_policies(soft_mask: str, iupac: str) -> None:
    if soft_mask not in SOFT_MASK_POLICIES:
        raise TokenizerUsageError(f"soft_mask must be one of {SOFT_MASK_POLICIES}, not {soft_mask!r}")
    if iupac not in IUPAC_POLICIES:
        raise TokenizerUsageError(f"iupac must be one of {IUPAC_POLICIES}, not {iupac!r}")


def single_base_tokens(iupac: str) -> list[str]:
    """Specials then bases, in id order: 10 tokens, or 20 with ``iupac="keep"``."""
    extra = list(AMBIGUITY_TOKENS) if iupac == "keep" else []
    return [*SPECIAL_TOKENS, *BASE_TOKENS, *extra]


def base_id_table(soft_mask: str, iupac: str, rna: bool) -> bytes:
    """The 256-byte translate table: byte -> single-base id, ``INVALID`` where the policies refuse it."""
    ids = {c: FIRST_BASE_ID + i for i, c in enumerate(BASE_TOKENS)}
    for i, c in enumerate(AMBIGUITY_TOKENS):
        if iupac == "keep":
            ids[c] = FIRST_BASE_ID + len(BASE_TOKENS) + i
        elif iupac == "to_n":
            ids[c] = ids["N"]
    if rna:
        ids["U"] = ids["T"]
    table = bytearray([INVALID]) * 256
    for c, i in ids.items():
        table[ord(c)] = i
        if soft_mask == "fold":
            table[ord(c.lower())] = i
    return bytes(table)


_SOFT_TABLE = bytes(1 if chr(b) in "".join(IUPAC_BASES).lower() + "u" else 0 for b in range(256))


def explain_invalid(char: str, soft_mask: str, iupac: str, rna: bool) -> str:
    """Why ``char`` is refused and what to do about it (one clause, no position)."""
    upper = char.upper()
    if char.islower() and (upper in IUPAC_BASES or (rna and upper == "U")) and soft_mask == "error":
        return "soft-masked (lowercase) base refused by soft_mask='error' (use soft_mask='fold')"
    if upper in AMBIGUITY_TOKENS and iupac == "error":
        return "IUPAC ambiguity code refused by iupac='error' (use iupac='to_n' or iupac='keep')"
    if upper == "U":
        return "RNA base U in a DNA sequence (pass rna=True if the input is RNA)"
    if upper in PROTEIN_ONLY:
        return "not a nucleotide code: this looks like a protein sequence"
    if char in GAPS:
        return "gap character, not a base (remove alignment gaps first)"
    if char in "[]":
        return "not a base (special tokens written in the text are " + " ".join(SPECIAL_TOKENS) + ")"
    if char.isspace():
        return "whitespace inside the sequence (strip FASTA line breaks first)"
    return "not an IUPAC nucleotide code"


def _raise_invalid(seq: str | bytes, pos: int, count: int, soft_mask: str, iupac: str, rna: bool) -> None:
    char = seq[pos] if isinstance(seq, str) else chr(seq[pos])
    raise InvalidSequenceError(char, pos, explain_invalid(char, soft_mask, iupac, rna), count)


def encode_bases(seq: str | bytes | bytearray, soft_mask: str, iupac: str, rna: bool) -> np.ndarray:
    """Single-base ids of ``seq``: (L,) uint8, writable. InvalidSequenceError names the first refused byte."""
    table = _table(soft_mask, iupac, rna)
    n = len(seq)
    out = np.empty(n, dtype=np.uint8)  # (L,)
    view = memoryview(out)
    is_str = isinstance(seq, str)
    for i in range(0, n, _CHUNK):
        piece = seq[i : i + _CHUNK]
        if is_str:
            try:
                piece = piece.encode("ascii")
            except UnicodeEncodeError as err:  # a non-ASCII character can never be a base
                _raise_invalid(seq, i + err.start, _count_invalid(seq, table), soft_mask, iupac, rna)
        ids = piece.translate(table)
        if _INVALID_BYTE in ids:  # memchr on a chunk still in cache: cheaper than a pass over the output
            _raise_invalid(
                seq, i + ids.index(_INVALID_BYTE), _count_invalid(seq, table), soft_mask, iupac, rna
            )
        view[i : i + len(ids)] = ids
    return out


def _count_invalid(seq: str | bytes | bytearray, table: bytes) -> int:
    """Number of refused characters in ``seq`` (error path only)."""
    raw = seq.encode("ascii", errors="replace") if isinstance(seq, str) else bytes(seq)
    return raw.translate(table).count(_INVALID_BYTE)


def translate_array(codes: np.ndarray, table: bytes) -> np.ndarray:
    """(N,) uint8 -> (N,) uint8 through a 256-byte table, in cache-sized chunks; the result is writable."""
    out = np.empty(len(codes), dtype=np.uint8)
    view = memoryview(out)
    for i in range(0, len(codes), _CHUNK):
        view[i : i + _CHUNK] = codes[i : i + _CHUNK].tobytes().translate(table)
    return out


def soft_mask_of(seq: str | bytes | bytearray) -> np.ndarray:
    """(L,) bool: True where the base is lowercase (soft-masked). Assumes ASCII (``encode`` checks it)."""
    n = len(seq)
    out = np.empty(n, dtype=np.uint8)
    view = memoryview(out)
    for i in range(0, n, _CHUNK):
        piece = seq[i : i + _CHUNK]
        if isinstance(piece, str):
            piece = piece.encode("ascii", errors="replace")
        view[i : i + len(piece)] = piece.translate(_SOFT_TABLE)
    return out.view(bool)


_TABLES: dict[tuple[str, str, bool], bytes] = {}


def _table(soft_mask: str, iupac: str, rna: bool) -> bytes:
    key = (soft_mask, iupac, bool(rna))
    if key not in _TABLES:
        check_policies(soft_mask, iupac)
        _TABLES[key] = base_id_table(*key)
    return _TABLES[key]
