"""BAM/CRAM reading: filters, coverage (against samtools depth and a naive count), CRAM references, indexes,
malformed files, the CLI, and the reproducibility of the bundled data."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pysam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genolong.errors import InconsistentDataError, InputMissingError, MalformedInputError, UsageError
from genolong.io.bam import Bam, ReadFilter, summarize_alignments

CONTIG = "MIIJ01000039.1"
LENGTH = 200_000
DEFAULT_EXCLUDE = 0x4 | 0x100 | 0x200 | 0x400  # what samtools depth drops by default


@pytest.fixture(scope="module")
def bam_path(data_dir: Path) -> Path:
    return data_dir / "ecoli_200k.reads.bam"


@pytest.fixture(scope="module")
def all_reads(bam_path: Path) -> list:
    with pysam.AlignmentFile(str(bam_path)) as handle:
        return list(handle.fetch(until_eof=True))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, ecoli_fasta: Path) -> Path:
    """A private copy of the slice, so htslib writes its .fai there and not into data/ under xdist."""
    path = tmp_path_factory.mktemp("ref") / "ecoli.fa"
    shutil.copy(ecoli_fasta, path)
    return path


@pytest.fixture(scope="module")
def cram(tmp_path_factory, bam_path: Path, reference: Path) -> Path:
    out = tmp_path_factory.mktemp("cram") / "reads.cram"
    pysam.view("-C", "-T", str(reference), "-o", str(out), str(bam_path), catch_stdout=False)
    pysam.index(str(out))
    return out


@pytest.fixture(scope="module")
def wrong_fasta(tmp_path_factory, ecoli_fasta: Path) -> Path:
    """Same contig name and length as the slice, one base changed."""
    seq = "".join(ecoli_fasta.read_text().splitlines()[1:])
    path = tmp_path_factory.mktemp("wrong") / "wrong.fa"
    path.write_text(f">{CONTIG}\n{seq[:5000]}{'A' if seq[5000] != 'A' else 'C'}{seq[5001:]}\n")
    return path


def assert_one_line_error(result, path, code):
    """Exit code; one 'genolong: error:' line naming the file (log lines may come first); no traceback."""
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("genolong: error:")]
    assert len(errors) == 1 and str(path) in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "[E::" not in result.stderr and "[W::" not in result.stderr


def naive_coverage(reads, start: int, end: int, keep: ReadFilter) -> np.ndarray:
    depth = np.zeros(end - start, dtype=np.int32)
    for read in reads:
        if not read.is_unmapped and keep.passes(read):
            for p in read.get_reference_positions():
                if start <= p < end:
                    depth[p - start] += 1
    return depth


# -- reads and filters ---------------------------------------------------------------------------------------


def test_header_and_index(bam_path):
    with Bam(bam_path) as bam:
        assert bam.lengths == {CONTIG: LENGTH} and bam.index_state() == "ok" and not bam.is_cram


def test_region_string_equals_zero_based_bounds(bam_path):
    with Bam(bam_path) as bam:
        a = [r.query_name for r in bam.fetch(f"{CONTIG}:1,001-2,000")]
        b = [r.query_name for r in bam.fetch(CONTIG, 1000, 2000)]
        assert a == b and a
        assert bam.region(f"{CONTIG}:1001") == (CONTIG, 1000, LENGTH)
        assert bam.region(CONTIG) == (CONTIG, 0, LENGTH)


def test_default_filters_match_samtools_semantics(bam_path, all_reads):
    with Bam(bam_path) as bam:
        got = {(r.query_name, r.flag) for r in bam.fetch(CONTIG, 50_000, 60_000)}
    expected = {
        (r.query_name, r.flag)
        for r in all_reads
        if not r.flag & DEFAULT_EXCLUDE and r.reference_start < 60_000 and r.reference_end > 50_000
    }
    assert got == expected


@pytest.mark.parametrize("options", [
    {"min_mapq": 1}, {"duplicates": True}, {"secondary": True, "qc_fail": True}, {"supplementary": False},
    {"include_flags": 16}, {"exclude_flags": 16, "min_mapq": 30},
])  # fmt: skip
def test_filter_options(bam_path, all_reads, options):
    keep = ReadFilter(**options)
    with Bam(bam_path) as bam:
        got = [r.query_name for r in bam.fetch(**options)]
    expected = [r.query_name for r in all_reads if keep.passes(r)]
    assert got == expected and got
    for r in all_reads:
        if keep.passes(r):
            assert r.mapping_quality >= keep.min_mapq and not r.is_unmapped
            assert (r.flag & keep.include_flags) == keep.include_flags and not r.flag & keep.exclude_flags
        assert (keep.reason(r) is None) == keep.passes(r)


def test_the_reason_a_read_is_left_out_names_its_first_failing_filter(all_reads):
    reasons = {ReadFilter(min_mapq=30).reason(r) for r in all_reads}
    assert {None, "unmapped", "low_mapq"} <= reasons
    by_flag = {"duplicate": 0x400, "secondary": 0x100, "qc_fail": 0x200}
    for name, bit in by_flag.items():
        assert all(ReadFilter().reason(r) == name for r in all_reads if r.flag & (0x4 | 0x400 | 0x100 | 0x200) == bit)
    assert ReadFilter(supplementary=False).reason(next(r for r in all_reads if r.flag == 0x800)) == "supplementary"


# -- coverage ------------------------------------------------------------------------------------------------


def samtools_depth(path: Path, region: str, *options: str) -> np.ndarray:
    text = pysam.depth("-a", "-r", region, *options, str(path))
    return np.array([int(line.split("\t")[2]) for line in text.splitlines()], dtype=np.int32)


def test_coverage_matches_samtools_depth(bam_path):
    with Bam(bam_path) as bam:
        depth = bam.coverage(CONTIG)
        assert depth.dtype == np.int32 and depth.shape == (LENGTH,)
        np.testing.assert_array_equal(depth, samtools_depth(bam_path, CONTIG))
        np.testing.assert_array_equal(
            bam.coverage(CONTIG, min_mapq=1), samtools_depth(bam_path, CONTIG, "-Q", "1")
        )
    assert depth.max() > 3 and depth.min() == 0


@settings(max_examples=20, deadline=None)
@given(start=st.integers(0, LENGTH - 1), size=st.integers(0, 3000), options=st.sampled_from([
    {}, {"duplicates": True, "secondary": True}, {"include_flags": 16},
    {"min_mapq": 1, "supplementary": False},
]))  # fmt: skip
def test_coverage_of_any_region_matches_a_naive_count(bam_path, all_reads, start, size, options):
    end = min(start + size, LENGTH)
    with Bam(bam_path) as bam:
        depth = bam.coverage(CONTIG, start, end, **options)
    assert depth.shape == (end - start,)
    np.testing.assert_array_equal(depth, naive_coverage(all_reads, start, end, ReadFilter(**options)))


def test_region_errors(bam_path):
    with Bam(bam_path) as bam:
        with pytest.raises(InconsistentDataError, match="not in the file's header"):
            bam.coverage("chr1", 0, 10)
        with pytest.raises(InconsistentDataError, match="neither a contig"):
            list(bam.fetch("chr1"))
        with pytest.raises(UsageError):
            bam.coverage(f"{CONTIG}:abc")
        with pytest.raises(UsageError):
            bam.coverage(f"{CONTIG}:10-5")
        with pytest.raises(UsageError):
            bam.coverage(CONTIG, -1, 10)
        with pytest.raises(InconsistentDataError, match="beyond"):
            bam.coverage(CONTIG, 0, LENGTH + 1)


# -- indexes -------------------------------------------------------------------------------------------------


def test_missing_index_then_index(bam_path, tmp_path, cli):
    path = tmp_path / "reads.bam"
    shutil.copy(bam_path, path)
    with Bam(path) as bam:
        assert bam.index_state() == "missing"
        with pytest.raises(InputMissingError, match="samtools index"):
            bam.coverage(CONTIG, 0, 100)
        assert len(list(bam.fetch())) == 2885  # a whole-file pass needs no index
        bam.index()
        assert bam.index_state() == "ok" and bam.coverage(CONTIG, 0, 1000).sum() > 0
    path.with_suffix(".bam.bai").unlink()
    result = cli("inspect", path)
    assert result.returncode == 0 and "index: missing" in result.stdout


def test_stale_index(bam_path, tmp_path):
    path = tmp_path / "reads.bam"
    shutil.copy(bam_path, path)
    shutil.copy(f"{bam_path}.bai", f"{path}.bai")
    now = os.path.getmtime(path)
    os.utime(f"{path}.bai", (now - 100, now - 100))
    with Bam(path) as bam:
        assert bam.index_state() == "stale"
        with pytest.raises(InconsistentDataError, match=r"older than the file.*samtools index"):
            list(bam.fetch(CONTIG, 0, 100))
        bam.index()
        assert bam.index_state() == "ok"


def test_unsorted_bam_cannot_be_indexed(bam_path, all_reads, tmp_path):
    path = tmp_path / "unsorted.bam"
    with pysam.AlignmentFile(str(bam_path)) as src, pysam.AlignmentFile(str(path), "wb", template=src) as dst:
        for read in reversed(all_reads):
            dst.write(read)
    assert summarize_alignments(path)["coordinate_sorted"] is False
    with Bam(path) as bam, pytest.raises(InconsistentDataError, match="samtools sort"):
        bam.index()


def test_region_queries_on_sam_say_to_sort_and_index(bam_path, all_reads, tmp_path):
    path = tmp_path / "reads.sam"
    with pysam.AlignmentFile(str(bam_path)) as src, pysam.AlignmentFile(str(path), "w", template=src) as dst:
        for read in all_reads[:20]:
            dst.write(read)
    with Bam(path) as bam, pytest.raises(InputMissingError) as caught:
        list(bam.fetch(f"{CONTIG}:1-1000"))
    assert "samtools sort" in str(caught.value)


# -- CRAM ----------------------------------------------------------------------------------------------------


def test_cram_with_its_reference_reads_like_the_bam(cram, bam_path, reference):
    with Bam(cram, reference=reference) as c, Bam(bam_path) as b:
        assert c.is_cram and c.index_state() == "ok"
        key = lambda r: (r.query_name, r.flag, r.reference_start, r.cigarstring, r.query_sequence)  # noqa: E731
        assert [key(r) for r in c.fetch(CONTIG, 0, 20_000)] == [key(r) for r in b.fetch(CONTIG, 0, 20_000)]
        np.testing.assert_array_equal(c.coverage(CONTIG), b.coverage(CONTIG))
    assert "http" not in os.environ["REF_PATH"]  # htslib cannot download a reference
    assert summarize_alignments(cram, reference)["format"] == "CRAM"


def test_cram_without_reference_is_a_usage_error(cram, cli):
    with pytest.raises(UsageError, match="reference FASTA"):
        Bam(cram)
    assert_one_line_error(cli("inspect", cram), cram, code=2)


def test_cram_with_the_wrong_reference(cram, wrong_fasta, cli):
    with Bam(cram, reference=wrong_fasta) as bam, pytest.raises(InconsistentDataError, match="MD5"):
        list(bam.fetch())
    assert_one_line_error(cli("inspect", cram, "--fasta", wrong_fasta), cram, code=5)


def test_reference_without_the_contig(bam_path, cli, tmp_path):
    fasta = tmp_path / "other.fa"
    fasta.write_text(">chrX\nACGT\n")
    with pytest.raises(InconsistentDataError, match="absent in the FASTA"):
        summarize_alignments(bam_path, fasta)
    assert_one_line_error(cli("inspect", bam_path, "--fasta", fasta), bam_path, code=5)


# -- malformed files -----------------------------------------------------------------------------------------


def test_garbage_and_missing_files(tmp_path, cli):
    path = tmp_path / "garbage.bam"
    path.write_text("hello world\nnot a bam\n")
    with pytest.raises(MalformedInputError, match="garbage.bam"):
        Bam(path)
    assert_one_line_error(cli("inspect", path), path, code=4)
    with pytest.raises(InputMissingError):
        Bam(tmp_path / "none.bam")
    assert_one_line_error(cli("inspect", tmp_path / "none.bam"), tmp_path / "none.bam", code=3)


def test_truncated_bam(bam_path, tmp_path, cli):
    path = tmp_path / "cut.bam"
    path.write_bytes(bam_path.read_bytes()[:60_000])
    with pytest.raises(MalformedInputError, match="truncated"), Bam(path) as bam:
        list(bam.fetch())
    assert_one_line_error(cli("inspect", path), path, code=4)


# -- summary and CLI -----------------------------------------------------------------------------------------


def test_summary_counts(bam_path, all_reads, reference, cli, data_dir):
    summary = summarize_alignments(bam_path, reference)
    mapped = [r for r in all_reads if not r.is_unmapped]
    assert summary["records"] == len(all_reads) and summary["unmapped"] == len(all_reads) - len(mapped) == 10
    assert summary["duplicate"] == sum(r.is_duplicate for r in mapped) > 0
    assert summary["secondary"] == sum(r.is_secondary for r in mapped) > 0
    assert summary["mapq0"] == sum(r.mapping_quality == 0 for r in mapped) > 0
    assert summary["reverse"] == sum(r.is_reverse for r in mapped) > 0
    assert (summary["sort_order"], summary["coordinate_sorted"], summary["index"]) == (
        "coordinate",
        True,
        "ok",
    )
    with Bam(bam_path) as bam:
        assert summary["contigs"][CONTIG]["mean_coverage"] == pytest.approx(bam.coverage(CONTIG).mean())
    result = cli("inspect", "data/ecoli_200k.reads.bam", cwd=data_dir.parent)
    assert result.returncode == 0 and "coordinate_sorted: True" in result.stdout


# -- the bundled data is reproducible ------------------------------------------------------------------------


def test_make_data_reproduces_the_bundled_vcf_and_bam(tmp_path, data_dir, shared_data):
    command = [sys.executable, str(data_dir / "make_data.py"), "--source", str(shared_data), "--out", str(tmp_path)]
    subprocess.run(command, check=True, timeout=120)
    for name in ("ecoli_200k.variants.vcf.gz", "ecoli_200k.variants.vcf.gz.tbi", "ecoli_200k.reads.bam.bai"):
        assert (tmp_path / name).exists()
    vcf = "ecoli_200k.variants.vcf.gz"
    assert gzip.decompress((tmp_path / vcf).read_bytes()) == gzip.decompress((data_dir / vcf).read_bytes())
    bam = "ecoli_200k.reads.bam"
    with pysam.AlignmentFile(str(tmp_path / bam)) as new, pysam.AlignmentFile(str(data_dir / bam)) as old:
        assert str(new.header) == str(old.header)
        assert [r.to_string() for r in new.fetch(until_eof=True)] == [
            r.to_string() for r in old.fetch(until_eof=True)
        ]
    total = sum(
        (data_dir / n).stat().st_size
        for n in os.listdir(data_dir)
        if n.startswith(("ecoli_200k.var", "ecoli_200k.reads"))
    )
    assert total < 1_000_000
