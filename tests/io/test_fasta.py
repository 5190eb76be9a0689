"""genolong.io.fasta: fetch against an independent parse, compression kinds, validation, index life cycle."""

from __future__ import annotations

import gzip
import json
import logging
import multiprocessing as mp
import os
import pickle
import random
import shutil
import signal
import stat
import tempfile
from pathlib import Path

import pysam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genolong.errors import InconsistentDataError, InputMissingError, MalformedInputError
from genolong.io.fasta import Fasta, Window, summarize_fasta
from genolong.io.fasta_index import BGZF_EOF, Scanner

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    """Keep the index cache inside the test's folder (inherited by child processes)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("GENOLONG_CACHE_DIR", str(path))
    return path


def write_fasta(path: Path, records: dict[str, str], width: int = 60, eol: str = "\n") -> Path:
    """A FASTA with ``width`` bases per line (records may be empty)."""
    with open(path, "w", newline="") as fh:
        for name, seq in records.items():
            fh.write(f">{name} some description{eol}")
            for i in range(0, len(seq), width):
                fh.write(seq[i : i + width] + eol)
    return path


def parse_fasta(path: Path) -> dict[str, str]:
    """An independent reading: plain Python over the text (any compression via gzip fallback)."""
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
    records: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith(">"):
            records[line[1:].split()[0]] = current = []
        elif line:
            current.append(line)
    return {name: "".join(parts) for name, parts in records.items()}


def bgzip(src: Path, dest: Path) -> Path:
    pysam.tabix_compress(str(src), str(dest), force=True)
    return dest


@pytest.fixture
def ecoli_copy(ecoli_fasta, tmp_path) -> Path:
    """The bundled slice, copied so that its index is built here."""
    return Path(shutil.copy(ecoli_fasta, tmp_path / "ecoli.fa"))


class Opened(tuple):
    """(Fasta, its sequence), with a short repr for hypothesis reports."""

    def __repr__(self) -> str:
        return f"<{self[0]!r} and its {len(self[1])} bases>"


@pytest.fixture(scope="module")
def ecoli_open(ecoli_fasta, tmp_path_factory):
    path = Path(shutil.copy(ecoli_fasta, tmp_path_factory.mktemp("ecoli") / "ecoli.fa"))
    with Fasta(path) as fa:
        yield Opened((fa, parse_fasta(path)["MIIJ01000039.1"]))


MIXED = {"chr1": "ACGTacgtNNNNRYKMacgt" * 13, "empty": "", "chr2": "ggccAATT" * 40 + "N", "one": "A"}


# ---- fetch -------------------------------------------------------------------------------------------------


def test_fetch_matches_independent_parse(ecoli_copy):
    seq = parse_fasta(ecoli_copy)["MIIJ01000039.1"]
    with Fasta(ecoli_copy) as fa:
        assert dict(fa.lengths) == {"MIIJ01000039.1": len(seq)} and fa.names == ("MIIJ01000039.1",)
        assert fa.fetch("MIIJ01000039.1") == seq
        for start, end in [(0, 1), (79, 81), (75, 85), (80, 160), (159, 241), (199_990, 200_000), (5, 5)]:
            assert fa.fetch("MIIJ01000039.1", start, end) == seq[start:end]
        rng = random.Random(0)
        for _ in range(200):
            start = rng.randrange(len(seq))
            end = min(len(seq), start + rng.randrange(1, 40_000))
            assert fa.fetch("MIIJ01000039.1", start, end) == seq[start:end]
    assert (ecoli_copy.parent / "ecoli.fa.fai").read_text() == "MIIJ01000039.1\t200000\t71\t80\t81\n"


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_plain_gzip_bgzip_give_identical_results(tmp_path, cache_dir, eol):
    plain = write_fasta(tmp_path / "ref.fa", MIXED, width=17, eol=eol)
    # names carry no hint: compression is detected from the magic bytes
    gz = tmp_path / "ref_gzip.fa"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    bgz = bgzip(plain, tmp_path / "ref_bgzip.fa")
    expected = {name: seq for name, seq in MIXED.items()}
    opened = [Fasta(p) for p in (plain, gz, bgz)]
    assert [fa.compression for fa in opened] == ["plain", "gzip", "bgzip"]
    for fa in opened:
        assert dict(fa.lengths) == {k: len(v) for k, v in expected.items()}
        for name, seq in expected.items():
            assert fa.fetch(name) == seq
            for start in range(0, len(seq), 7):
                assert fa.fetch(name, start, min(start + 40, len(seq))) == seq[start : start + 40]
        fa.close()
    assert (tmp_path / "ref_bgzip.fa.gzi").exists() and (tmp_path / "ref_bgzip.fa.fai").exists()
    assert not (tmp_path / "ref_gzip.fa.fai").exists()  # the gzip copy and its index live in the cache
    assert len(list(cache_dir.rglob("*.fai"))) == 1
    again = Fasta(gz)  # reuses the copy
    assert again.fetch("chr2", 3, 9) == expected["chr2"][3:9]
    assert len([p for p in cache_dir.rglob("*") if p.is_file()]) == 2


def test_out_of_range_and_unknown_contig(ecoli_open):
    fa, seq = ecoli_open
    for start, end in [(-1, 5), (10, 5), (0, len(seq) + 1), (len(seq) + 1, len(seq) + 2)]:
        with pytest.raises(InconsistentDataError, match="outside contig 'MIIJ01000039.1' of length 200000"):
            fa.fetch("MIIJ01000039.1", start, end)
    with pytest.raises(InconsistentDataError, match=r"unknown contig 'chr9'.*'MIIJ01000039.1'") as info:
        fa.fetch("chr9", 0, 10)
    assert info.value.exit_code == 5 and info.value.hint is None


@SETTINGS
@given(data=st.data())
def test_fetch_is_additive(ecoli_open, data):
    fa, seq = ecoli_open
    a, m, b = sorted(data.draw(st.lists(st.integers(0, len(seq)), min_size=3, max_size=3)))
    name = "MIIJ01000039.1"
    assert fa.fetch(name, a, m) + fa.fetch(name, m, b) == fa.fetch(name, a, b) == seq[a:b]


@SETTINGS
@given(start=st.integers(-300, 200_300), width=st.integers(0, 600))
def test_window_padding(ecoli_open, start, width):
    fa, seq = ecoli_open
    end = start + width
    if width and (end <= 0 or start >= len(seq)):
        with pytest.raises(InconsistentDataError, match="does not overlap"):
            fa.fetch_window("MIIJ01000039.1", start, end)
        return
    w = fa.fetch_window("MIIJ01000039.1", start, end)
    assert isinstance(w, Window) and len(w.sequence) == width
    if width:
        assert w.left_pad == max(0, -start) and w.right_pad == max(0, end - len(seq))
        assert w.sequence == "N" * w.left_pad + seq[max(start, 0) : min(end, len(seq))] + "N" * w.right_pad
    else:
        assert (w.sequence, w.left_pad, w.right_pad) == ("", 0, 0)
    assert (w.contig, w.start, w.end) == ("MIIJ01000039.1", start, end)


records_strategy = st.dictionaries(
    st.text("abcXYZ019_.|", min_size=1, max_size=8),
    st.text("ACGTNRYacgtnry", max_size=300),
    min_size=1,
    max_size=4,
)


@SETTINGS
@given(records=records_strategy, width=st.integers(1, 90), crlf=st.booleans(), final_eol=st.booleans())
def test_random_files_round_trip(records, width, crlf, final_eol):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_fasta(Path(tmp) / "r.fa", records, width, "\r\n" if crlf else "\n")
        if not final_eol:  # a last line without its line ending
            path.write_bytes(path.read_bytes().rstrip(b"\r\n"))
        with Fasta(path) as fa:
            assert dict(fa.lengths) == {k: len(v) for k, v in records.items()}
            for name, seq in records.items():
                assert fa.fetch(name) == seq
        summary = summarize_fasta(path)
    for contig, seq in zip(summary["contigs"], records.values(), strict=True):
        n = sum(c in "Nn" for c in seq)
        gc = sum(c in "GCgc" for c in seq)
        assert contig["gc_fraction"] == (round(gc / (len(seq) - n), 6) if len(seq) > n else None)
        assert contig["soft_masked_fraction"] == (
            round(sum(c.islower() for c in seq) / len(seq), 6) if seq else 0
        )


@settings(max_examples=30, deadline=None)
@given(records=records_strategy, width=st.integers(1, 40), cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_scan_does_not_depend_on_chunking(records, width, cuts):
    with tempfile.TemporaryDirectory() as tmp:
        raw = write_fasta(Path(tmp) / "r.fa", records, width).read_bytes()
    whole, pieces = Scanner("r.fa", count=True), Scanner("r.fa", count=True)
    whole.feed(raw)
    edges = [0, *sorted(c % (len(raw) + 1) for c in cuts), len(raw)]
    for lo, hi in zip(edges, edges[1:], strict=False):
        pieces.feed(raw[lo:hi])
    assert whole.finish() == pieces.finish() and whole.counts == pieces.counts


def test_many_records_summary(tmp_path):
    rng = random.Random(1)
    records = {
        f"r{i}": "".join(rng.choice("ACGTNacgtn") for _ in range(rng.randrange(0, 90))) for i in range(150)
    }
    summary = summarize_fasta(write_fasta(tmp_path / "many.fa", records, width=25))
    assert summary["n_contigs"] == 150 and summary["total_length"] == sum(map(len, records.values()))
    all_bases = "".join(records.values())
    assert summary["n_fraction"] == round(sum(c in "Nn" for c in all_bases) / len(all_bases), 6)
    for contig, seq in zip(summary["contigs"], records.values(), strict=True):
        assert contig["length"] == len(seq)
        assert contig["n_fraction"] == (round(sum(c in "Nn" for c in seq) / len(seq), 6) if seq else 0.0)


# ---- validation --------------------------------------------------------------------------------------------

BAD_FILES = {
    "empty": (b"", 1, "empty file"),
    "blank_only": (b"\n\n", 1, "no FASTA records"),
    "empty_name": (b">a\nAC\n> x\nAC\n", 3, "empty record name"),
    "duplicate": (b">a\nACGT\n>b\nAC\n>a\nAC\n", 5, "duplicate record name 'a' (first at line 1)"),
    "ragged_short": (b">a\nACGTA\nCC\nAC\n>b\nTTTT\n", 3, "ragged lines"),
    "ragged_long": (b">a\nACGTA\nCCGGTT\n", 3, "ragged lines"),
    "blank_inside": (b">a\nACGTA\n\nACGTA\n", 4, "blank line"),
    "cr_only": (b">a\rACGT\rAC\r", 1, "CR-only"),
    "mixed_eol": (b">a\r\nACGT\r\nAC\n", 3, "mixed line endings"),
    "bad_letter": (b">a\nACGT\nAC1T\n", 3, "'1' at column 3"),
    "gap": (b">a\nACGT\nA-GT\n", 3, "alignment gaps"),
    "fastq": (b"@read1\nACGT\n+\nIIII\n", 1, "FASTQ"),
    "protein": (b">p1\nMKVLAAGEST\n", 2, "protein"),
    "text_first": (b"hello\n>a\nAC\n", 1, "text before the first '>'"),
    "trailing_space": (b">a\nACGTA  \nACGTA\nAC\n", 2, "trailing whitespace after the bases"),
    "trailing_tabs": (b">a\nACGTA\nACGTA\t\nACGTA\t\nAC\n", 3, "trailing whitespace after the bases"),
    "byte_order_mark": (b"\xef\xbb\xbf>a\nACGT\n", 1, "starts with a UTF-8 byte-order mark"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_file_rejected_by_api(tmp_path, case):
    content, line, fragment = BAD_FILES[case]
    path = tmp_path / f"{case}.fa"
    path.write_bytes(content)
    for call in (Fasta, summarize_fasta):
        with pytest.raises(MalformedInputError) as info:
            call(path)
        assert fragment in str(info.value) and f"{case}.fa:{line}:" in str(info.value)
        assert info.value.line == line and info.value.exit_code == 4
    assert not list(tmp_path.glob("*.fai")) and not list(tmp_path.glob(".*tmp"))  # nothing half-written


def test_malformed_file_in_bgzip_names_the_line(tmp_path):
    plain = tmp_path / "p.fa"
    plain.write_bytes(b">a\nACGT\nACGT\n>b\nACGT\nA7GT\n")
    with pytest.raises(MalformedInputError, match=r"b.fa.gz:6: record b: '7' at column 2"):
        Fasta(bgzip(plain, tmp_path / "b.fa.gz"))


@pytest.fixture
def run_main(capsys):
    """``genolong.cli.main(args)`` in this process: (exit code, stdout, stderr); leaves logging as it was."""
    from genolong.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        root = logging.getLogger()
        handlers, level, sigterm = root.handlers[:], root.level, signal.getsignal(signal.SIGTERM)
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exit:
            code = exit.code
        finally:
            root.handlers[:], root.level = handlers, level
            signal.signal(signal.SIGTERM, sigterm)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_file_rejected_by_cli_main(tmp_path, run_main, case):
    content, line, _ = BAD_FILES[case]
    path = tmp_path / f"{case}.fa"
    path.write_bytes(content)
    code, out, err = run_main("inspect", path)
    assert code == 4 and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"genolong: error: {path}:{line}:")


def test_malformed_file_rejected_by_cli_process(tmp_path, cli):
    case = "ragged_short"  # the others go through the same path, in test_malformed_file_rejected_by_cli_main
    content, line, fragment = BAD_FILES[case]
    path = tmp_path / f"{case}.fa"
    path.write_bytes(content)
    result = cli("inspect", path)
    assert result.returncode == 4 and "Traceback" not in result.stderr
    assert (
        result.stderr.count("\n") == 1 and f"{case}.fa:{line}:" in result.stderr and fragment in result.stderr
    )


def test_corrupt_or_unsupported_compression(tmp_path):
    truncated = tmp_path / "t.fa.gz"
    truncated.write_bytes(gzip.compress(b">a\n" + b"ACGT" * 5000 + b"\n")[:-30])
    bz2 = tmp_path / "b.fa"
    bz2.write_bytes(b"BZh91AY&SY" + bytes(20))
    for path, fragment in [(truncated, "corrupt gzip stream"), (bz2, "compressed with bzip2")]:
        for call in (Fasta, summarize_fasta):
            with pytest.raises(MalformedInputError, match=fragment):
                call(path)


def test_missing_file(tmp_path, cli):
    with pytest.raises(InputMissingError):
        Fasta(tmp_path / "nope.fa")
    result = cli("inspect", tmp_path / "nope.fa")
    assert result.returncode == 3 and "Traceback" not in result.stderr


def test_directory_is_named_as_such(tmp_path, run_main):
    folder = tmp_path / "ref.fa"
    folder.mkdir()
    for call in (Fasta, summarize_fasta):
        with pytest.raises(InputMissingError, match=r"ref.fa: is a directory, not a FASTA file") as info:
            call(folder)
        assert info.value.exit_code == 3
    code, _, err = run_main("inspect", folder)
    assert code == 3 and "is a directory" in err and "no such file" not in err


def _bgzf_blocks(raw: bytes) -> list[int]:
    """The offset of each BGZF block in ``raw`` (BSIZE, the block size less one, is at bytes 16-17)."""
    offsets, at = [], 0
    while at < len(raw):
        offsets.append(at)
        at += int.from_bytes(raw[at + 16 : at + 18], "little") + 1
    return offsets


def test_bgzip_cut_at_a_block_boundary_is_rejected(tmp_path, run_main):
    rng = random.Random(3)
    plain = write_fasta(tmp_path / "p.fa", {"a": "".join(rng.choices("ACGT", k=200_000))})
    raw = bgzip(plain, tmp_path / "whole.fa.gz").read_bytes()
    blocks = _bgzf_blocks(raw)
    assert len(blocks) > 3 and raw.endswith(BGZF_EOF)
    cut = tmp_path / "cut.fa.gz"
    cut.write_bytes(raw[: blocks[2]])  # two whole blocks, as an interrupted bgzip leaves them
    for call in (Fasta, summarize_fasta):
        with pytest.raises(MalformedInputError, match=r"cut.fa.gz: looks truncated: no BGZF end-of-file") as info:
            call(cut)
        assert info.value.exit_code == 4
    code, out, err = run_main("inspect", cut)
    assert code == 4 and out == "" and "no BGZF end-of-file block" in err
    assert summarize_fasta(tmp_path / "whole.fa.gz")["total_length"] == 200_000


# ---- the index life cycle ----------------------------------------------------------------------------------


def test_stale_index_is_rebuilt(tmp_path):
    path = write_fasta(tmp_path / "s.fa", {"a": "ACGT" * 30, "b": "GG"}, width=10)
    fai = tmp_path / "s.fa.fai"
    Fasta(path).close()
    first = fai.read_text()
    fai.write_text("a\t999\t3\t10\t11\n")  # wrong but newer than the FASTA: inconsistent, so rebuilt
    assert dict(Fasta(path).lengths) == {"a": 120, "b": 2} and fai.read_text() == first
    write_fasta(path, {"a": "TTTT" * 50}, width=7)  # a new FASTA older than its index
    os.utime(fai, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    with Fasta(path) as fa:
        assert dict(fa.lengths) == {"a": 200} and fa.fetch("a", 195, 200) == "TTTTT"
    os.utime(path, ns=(fai.stat().st_mtime_ns + 10**9,) * 2)  # touched: newer than the index
    fai.write_text("a\t200\t4\t3\t4\n")
    with Fasta(path) as fa:
        assert fa.fetch("a", 0, 20) == "T" * 20
    assert fai.read_text() == "a\t200\t20\t7\t8\n" and fai.stat().st_mtime_ns >= path.stat().st_mtime_ns


def _rebuilds(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()]


def _older_than(path: Path, other: Path) -> None:
    """Date ``path`` a second before ``other``, so that only the content can tell that ``other`` is stale."""
    when = other.stat().st_mtime_ns - 10**9
    os.utime(path, ns=(when, when))


ONE, TWO = "".join(random.Random(4).choices("ACGT", k=3000)), "".join(random.Random(5).choices("ACGT", k=3000))
REWRITES = {  # the FASTA written after the index was built from {"1": ONE, "2": TWO}
    "swapped": ({"2": TWO, "1": ONE}, 60),
    "grown": ({"1": ONE, "2": TWO + "ACGT"}, 60),
    "cut": ({"1": ONE, "2": TWO[:-7]}, 60),
    "rewrapped": ({"1": ONE, "2": TWO}, 70),
}


@pytest.mark.parametrize("case", sorted(REWRITES))
def test_index_newer_than_a_changed_fasta_is_rebuilt(tmp_path, caplog, case):
    path = write_fasta(tmp_path / "order.fa", {"1": ONE, "2": TWO})
    fai = Path(f"{path}.fai")
    Fasta(path).close()
    records, width = REWRITES[case]
    write_fasta(path, records, width=width)
    _older_than(path, fai)
    with caplog.at_level(logging.INFO, logger="genolong.io.fasta"), Fasta(path) as fa:
        assert dict(fa.lengths) == {k: len(v) for k, v in records.items()}
        assert fa.fetch("1") == records["1"] and fa.fetch("2") == records["2"]
    (message,) = _rebuilds(caplog)
    assert f"index {fai} does not match {path}: " in message
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="genolong.io.fasta"), Fasta(path) as fa:  # the rebuilt one holds
        assert fa.fetch("1", 0, 10) == records["1"][:10] and not _rebuilds(caplog)


@pytest.mark.parametrize("line", ["a\t120\t3\t0\t0", "a\t120\t-9\t10\t11", "a\t120\t3\t10\t30"])
def test_index_with_impossible_numbers_is_rebuilt(tmp_path, line):
    path = write_fasta(tmp_path / "n.fa", {"a": "ACGT" * 30}, width=10)
    fai = Path(f"{path}.fai")
    fai.write_text(line + "\n")
    _older_than(path, fai)
    with Fasta(path) as fa:
        assert fa.fetch("a", 100, 120) == "ACGT" * 5
    assert fai.read_text() == "a\t120\t20\t10\t11\n"


def test_many_records_index_of_renamed_records_is_rebuilt(tmp_path, caplog):
    records = {f"r{i}": "ACGT" * (i % 7 + 1) for i in range(300)}
    path = write_fasta(tmp_path / "many.fa", records, width=10)
    Fasta(path).close()
    renamed = {f"s{i}": seq for i, seq in enumerate(records.values())}  # same bytes per record, new names
    write_fasta(path, renamed, width=10)
    _older_than(path, Path(f"{path}.fai"))
    with caplog.at_level(logging.INFO, logger="genolong.io.fasta"), Fasta(path) as fa:
        assert fa.names == tuple(renamed) and fa.fetch("s299") == renamed["s299"]
    assert "not its header" in _rebuilds(caplog)[0]


def test_bgzip_index_of_another_file_is_rebuilt(tmp_path, caplog):
    rng = random.Random(6)
    first = {"1": "".join(rng.choices("ACGT", k=150_000)), "2": "".join(rng.choices("ACGT", k=90_000))}
    second = {"1": "".join(rng.choices("ACGT", k=40_000)), "2": "".join(rng.choices("ACGT", k=230_000))}
    path = bgzip(write_fasta(tmp_path / "a.fa", first), tmp_path / "st.fa.gz")
    fai, gzi = Path(f"{path}.fai"), Path(f"{path}.gzi")
    Fasta(path).close()
    bgzip(write_fasta(tmp_path / "b.fa", second, width=70), path)
    _older_than(path, fai)
    _older_than(path, gzi)
    with caplog.at_level(logging.INFO, logger="genolong.io.fasta"), Fasta(path) as fa:
        assert dict(fa.lengths) == {"1": 40_000, "2": 230_000}
        assert fa.fetch("1", 0, 60) == second["1"][:60] and fa.fetch("2", 229_000) == second["2"][229_000:]
    assert len(_rebuilds(caplog)) == 1 and f"index {fai} does not match" in _rebuilds(caplog)[0]


def test_bgzip_gzi_of_another_file_is_rebuilt(tmp_path, caplog):
    rng = random.Random(7)
    big = bgzip(write_fasta(tmp_path / "big.fa", {"1": "".join(rng.choices("ACGT", k=400_000))}), tmp_path / "b.gz")
    records = {"1": "".join(rng.choices("ACGT", k=200_000))}
    path = bgzip(write_fasta(tmp_path / "r.fa", records), tmp_path / "r.fa.gz")
    Fasta(big).close()
    Fasta(path).close()
    gzi = Path(f"{path}.gzi")
    shutil.copy(f"{big}.gzi", gzi)  # the .fai still matches; the block offsets do not
    with caplog.at_level(logging.INFO, logger="genolong.io.fasta"), Fasta(path) as fa:
        assert fa.fetch("1", 150_000, 150_100) == records["1"][150_000:150_100]
    assert f"{gzi} does not match it" in _rebuilds(caplog)[0]
    assert gzi.read_bytes() != Path(f"{big}.gzi").read_bytes()


ENDINGS = [(e, False) for e in ("empty_last", "bare_last")]  # htslib cannot index these when compressed
ENDINGS += [(e, c) for e in ("final_eol", "no_final_eol", "blank_lines", "crlf") for c in (False, True)]


@pytest.mark.parametrize(("ending", "compressed"), ENDINGS)
def test_valid_index_is_not_rebuilt(tmp_path, caplog, ending, compressed):
    """The index check accepts every ending the scan accepts, so a good index is reused, not rebuilt."""
    records = {"a": "ACGT" * 40, "b": "GGCCA" * 13} | ({"z": ""} if ending in ("empty_last", "bare_last") else {})
    path = write_fasta(tmp_path / "v.fa", records, width=16, eol="\r\n" if ending == "crlf" else "\n")
    raw = path.read_bytes()
    raw = {"no_final_eol": raw.rstrip(b"\n"), "blank_lines": raw + b"\n\n\n", "bare_last": raw[:-1]}.get(ending, raw)
    path.write_bytes(raw.replace(b"z some description", b"z") if ending == "bare_last" else raw)
    if compressed:
        path = bgzip(path, tmp_path / "v.fa.gz")
    Fasta(path).close()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="genolong.io.fasta"), Fasta(path) as fa:
        assert dict(fa.lengths) == {k: len(v) for k, v in records.items()} and fa.fetch("b") == records["b"]
    assert not [r for r in caplog.records if "index" in r.getMessage()]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077], ids=oct)
def test_index_files_have_the_umask_mode(tmp_path, umask):
    path = bgzip(write_fasta(tmp_path / "m.fa", MIXED), tmp_path / "m.fa.gz")
    old = os.umask(umask)
    try:
        Fasta(path).close()
    finally:
        os.umask(old)
    for index in (f"{path}.fai", f"{path}.gzi"):
        assert stat.S_IMODE(os.stat(index).st_mode) == 0o666 & ~umask


def _open_in_child(path: str, barrier, results) -> None:
    barrier.wait()  # all four start building the missing index at once
    with Fasta(path) as fa:
        results.put((dict(fa.lengths), fa.fetch("c3", 1000, 1100)))


def test_concurrent_index_builds_leave_one_valid_index(tmp_path):
    rng = random.Random(2)
    records = {f"c{i}": "".join(rng.choices("ACGT", k=200_000)) for i in range(6)}
    path = write_fasta(tmp_path / "race.fa", records, width=70)
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    workers = [ctx.Process(target=_open_in_child, args=(str(path), barrier, results)) for _ in range(4)]
    for w in workers:
        w.start()
    got = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * 4
    assert got == [({k: len(v) for k, v in records.items()}, records["c3"][1000:1100])] * 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["race.fa", "race.fa.fai"]
    assert len((tmp_path / "race.fa.fai").read_text().splitlines()) == 6


def _fetch_in_child(fa: Fasta) -> tuple[int, str, bool]:
    seq = fa.fetch("chr2", 10, 30)
    return os.getpid(), seq, fa._pid == os.getpid()  # read through a handle of its own


def _fetch_inherited(fa: Fasta, results) -> None:
    results.put(_fetch_in_child(fa))


def test_fasta_in_other_processes(tmp_path):
    path = bgzip(write_fasta(tmp_path / "p.fa", MIXED, width=50), tmp_path / "p.fa.gz")
    fa = Fasta(path)
    assert pickle.loads(pickle.dumps(fa)).__dict__["_handle"] is None
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:  # arguments are pickled
        pid, seq, own = pool.apply(_fetch_in_child, (fa,))
    assert pid != os.getpid() and seq == MIXED["chr2"][10:30] and own
    results = ctx.Queue()
    child = ctx.Process(target=_fetch_inherited, args=(fa, results))  # inherited as is: its handle too
    child.start()
    pid, seq, own = results.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0 and seq == MIXED["chr2"][10:30] and own and pid != os.getpid()
    handle = fa._handle
    assert fa.fetch("chr2", 10, 30) == seq and fa._handle is handle  # the parent keeps its own
    fa._pid = -1  # as seen from a forked child: the next read opens a handle of its own
    assert fa.fetch("chr2", 10, 30) == seq and fa._handle is not handle
    fa.close()
    with pytest.raises(ValueError, match="closed"):
        fa.fetch("chr2", 0, 1)


def test_aliases(tmp_path, caplog):
    path = write_fasta(tmp_path / "a.fa", {"chr1": "ACGT" * 5, "MT": "GGCC", "X": "TTAA", "chrUn_1": "A"})
    with Fasta(path) as fa:
        assert "chr1" in fa and "1" not in fa and len(fa) == 4
        with pytest.raises(InconsistentDataError, match=r"unknown contig '1'.*aliases=True to read 'chr1'"):
            fa.fetch("1", 0, 4)
    with Fasta(path, aliases=True) as fa, caplog.at_level(logging.INFO, logger="genolong.io.fasta"):
        assert "1" in fa and "chrM" in fa and "chrX" in fa and "2" not in fa
        assert fa.fetch("1", 0, 4) == fa.fetch("chr1", 0, 4) == "ACGT"
        assert fa.fetch("chrM") == "GGCC" and fa.fetch("chrX", 1, 3) == "TA" and fa.fetch("MT") == "GGCC"
        assert fa.fetch_window("1", -2, 2).sequence == "NNAC" and fa.fetch("1", 4, 8) == "ACGT"
        assert list(fa.lengths) == ["chr1", "MT", "X", "chrUn_1"]  # names as in the file
        with pytest.raises(InconsistentDataError, match="unknown contig 'chr2'"):
            fa.fetch("chr2")
    resolved = [r.getMessage() for r in caplog.records if "for it" in r.getMessage()]
    assert len(resolved) == 3 and any("'1'" in m and "'chr1'" in m for m in resolved)


def test_read_only_folder_puts_the_index_in_the_cache(tmp_path, cache_dir):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = write_fasta(folder / "r.fa", {"a": "ACGTN" * 20}, width=30)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with Fasta(path) as fa:
            assert fa.fetch("a", 28, 33) == "TNACG"
        assert list(folder.iterdir()) == [path] and len(list(cache_dir.rglob("r.fa.fai"))) == 1
    finally:
        folder.chmod(stat.S_IRWXU)


# ---- summary and the CLI -----------------------------------------------------------------------------------


def test_summary_of_bundled_slice(ecoli_fasta):
    seq = parse_fasta(ecoli_fasta)["MIIJ01000039.1"]
    summary = summarize_fasta(ecoli_fasta)
    assert (
        summary["compression"] == "plain" and summary["n_contigs"] == 1 and summary["total_length"] == 200_000
    )
    gc = sum(c in "GCgc" for c in seq) / (len(seq) - sum(c in "Nn" for c in seq))
    assert summary["gc_fraction"] == summary["contigs"][0]["gc_fraction"] == round(gc, 6)
    assert summary["contigs"][0] == {
        "name": "MIIJ01000039.1",
        "length": 200_000,
        "gc_fraction": round(gc, 6),
        "n_fraction": 0.0,
        "soft_masked_fraction": 0.0,
    }
    assert not Path(str(ecoli_fasta) + ".gzi").exists()


def test_cli_inspect(ecoli_fasta, cli):
    result = cli("inspect", ecoli_fasta)
    assert result.returncode == 0, result.stderr
    assert "MIIJ01000039.1" in result.stdout and "200000" in result.stdout
    result = cli("inspect", ecoli_fasta, "--json", "true")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["kind"] == "fasta" and summary["n_contigs"] == 1 and summary["total_length"] == 200_000
    assert {"gc_fraction", "n_fraction", "soft_masked_fraction", "compression"} <= set(summary)
    assert summary["contigs"][0]["name"] == "MIIJ01000039.1"
