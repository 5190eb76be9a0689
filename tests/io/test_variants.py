"""VCF/BCF reading: normalization properties, skip accounting, REF policies, htslib messages, errors, CLI."""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import pysam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genolong.errors import InconsistentDataError, InputMissingError, MalformedInputError, UsageError
from genolong.io.alleles import Variant, normalize
from genolong.io.htslib import parse_htslib_messages
from genolong.io.variants import SKIP_REASONS, read_variants

CONTIG = "MIIJ01000039.1"
HEADER = "##fileformat=VCFv4.2\n##contig=<ID=c1,length=40>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
C1 = "ACGTAAAACAGGGGGGTCATCATCATCCCCCCCCCCCAGT"  # 40 bases with runs and a tandem repeat
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def vcf(data_dir: Path) -> Path:
    return data_dir / "ecoli_200k.variants.vcf.gz"


@pytest.fixture(scope="module")
def genome(ecoli_fasta: Path) -> str:
    return "".join(ecoli_fasta.read_text().splitlines()[1:])  # parsed here: no index written beside it


@pytest.fixture
def small(tmp_path: Path):
    """write(body, name) -> a VCF on contig c1 (header included) next to c1.fa."""
    (tmp_path / "c1.fa").write_text(f">c1\n{C1}\n")

    def write(body: str, name: str = "t.vcf", header: str = HEADER) -> Path:
        path = tmp_path / name
        path.write_text(header + body)
        return path

    return write


def by_id(variants):
    out = {}
    for v in variants:
        out.setdefault(v.id, []).append(v)
    return out


# -- the bundled VCF -----------------------------------------------------------------------------------------


def test_bundled_vcf_normalized_against_the_reference(vcf, ecoli_fasta, genome):
    reader = read_variants(vcf, ecoli_fasta, ref_policy="skip")
    got = by_id(reader)
    s = reader.summary
    assert (s.records, s.alleles, s.yielded) == (14, 16, 10)
    assert dict(s.skipped) == {"missing_alt": 1, "symbolic": 1, "breakend": 1, "spanning_deletion": 1,
                               "out_of_bounds": 1, "ref_mismatch": 1}  # fmt: skip
    assert s.balanced
    # the deletion written at the right end of a homopolymer moves to its left end
    (dele,) = got["deletion_right_shifted"]
    run_start = dele.vcf_pos - 1
    while genome[run_start - 1] == genome[dele.vcf_pos]:
        run_start -= 1
    assert (dele.pos, dele.ref, dele.alt) == (
        run_start - 1,
        genome[run_start - 1 : run_start + 1],
        genome[run_start - 1],
    )
    assert dele.pos < dele.vcf_pos - 1 and dele.kind == "deletion"
    # at the contig start the anchor base is on the right
    assert got["edge_first_deletion"] == [Variant(CONTIG, 0, genome[:2], genome[1])]
    # the multi-allelic record is split and each allele trimmed
    snv, deletion = sorted(got["multiallelic"], key=lambda v: v.kind)
    assert (snv.kind, snv.pos, snv.ref, snv.allele) == ("SNV", 1999, genome[1999], 2)
    assert (deletion.kind, deletion.allele) == ("deletion", 1)
    assert [v.kind for v in got["mnv"]] == ["MNV"] and got["spanning_deletion"][0].kind == "SNV"
    assert got["edge_last_snv"][0].pos == len(genome) - 1
    assert "ref_mismatch" not in got and "missing_alt" not in got


def test_normalized_variants_give_the_same_haplotypes_as_the_records(vcf, ecoli_fasta, genome):
    for v in read_variants(vcf, ecoli_fasta, ref_policy="skip"):
        start, end = max(0, v.vcf_pos - 30), min(len(genome), v.vcf_pos + 30)
        window = genome[start:end]
        original = Variant(CONTIG, v.vcf_pos - 1, v.vcf_ref, v.vcf_alt)
        assert v.apply(window, offset=start) == original.apply(window, offset=start)


def test_line_numbers_and_origin(vcf, ecoli_fasta):
    first = next(iter(read_variants(vcf, ecoli_fasta)))
    assert (first.record, first.line, first.vcf_pos, first.id) == (1, 8, 1, "edge_first_deletion")


def test_ref_policy_error_names_file_line_record_and_bases(vcf, ecoli_fasta, genome):
    with pytest.raises(InconsistentDataError) as info:
        list(read_variants(vcf, ecoli_fasta, ref_policy="error"))
    text = str(info.value)
    assert str(vcf) in text and ":19:" in text and "ref_mismatch" in text
    assert f"{CONTIG}:24000" in text and f"'{genome[23999]}'" in text and info.value.exit_code == 5


def test_ref_policy_warn_logs_and_yields(vcf, ecoli_fasta, caplog):
    with caplog.at_level(logging.WARNING, logger="genolong.io.variants"):
        reader = read_variants(vcf, ecoli_fasta, ref_policy="warn")
        got = by_id(reader)
    assert len(got["ref_mismatch"]) == 1 and reader.summary.ref_mismatch_warned == 1
    assert "does not match the reference" in caplog.text and reader.summary.balanced


def test_a_pipe_is_refused_before_it_is_read(tmp_path):
    fifo = tmp_path / "calls.vcf"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="not a regular file"):
        read_variants(fifo)


def test_without_reference_alleles_are_trimmed_only(vcf):
    reader = read_variants(vcf)
    got = by_id(reader)
    (dele,) = got["deletion_right_shifted"]
    assert dele.pos == dele.vcf_pos - 1  # cannot left-align without the reference
    assert "ref_mismatch" in got  # REF cannot be checked
    assert reader.summary.skipped["out_of_bounds"] == 1  # the header's contig length still applies


def test_bcf_reads_like_the_vcf(vcf, ecoli_fasta, tmp_path):
    bcf = tmp_path / "v.bcf"
    with pysam.VariantFile(str(vcf)) as src, pysam.VariantFile(str(bcf), "wb", header=src.header) as dst:
        for record in src:
            dst.write(record)
    from_vcf = list(read_variants(vcf, ecoli_fasta, ref_policy="skip"))
    from_bcf = list(read_variants(bcf, ecoli_fasta, ref_policy="skip"))
    assert from_bcf == from_vcf and all(v.line is None for v in from_bcf)
    assert [v.record for v in from_bcf] == [v.record for v in from_vcf]


def test_contig_aliases_only_when_asked(tmp_path):
    (tmp_path / "ref.fa").write_text(">1\nACGTACGTAC\n>MT\nGGGGCCCCAA\n")
    path = tmp_path / "a.vcf"
    path.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1>\n##contig=<ID=chrM>\n"
                    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                    "chr1\t2\t.\tC\tT\t.\t.\t.\nchrM\t5\t.\tC\tA\t.\t.\t.\n")  # fmt: skip
    plain = read_variants(path, tmp_path / "ref.fa")
    assert list(plain) == [] and plain.summary.skipped["unknown_contig"] == 2
    aliased = list(read_variants(path, tmp_path / "ref.fa", aliases=True))
    assert aliased == [Variant("1", 1, "C", "T"), Variant("MT", 4, "C", "A")]


def test_header_length_disagreeing_with_the_reference(small, tmp_path):
    path = small("c1\t2\t.\tC\tT\t.\t.\t.\n", header=HEADER.replace("length=40", "length=41"))
    with pytest.raises(InconsistentDataError, match="length 41 in the VCF header but 40 in the FASTA"):
        read_variants(path, tmp_path / "c1.fa")


def test_every_skip_reason_is_counted(small, tmp_path):
    body = "".join(f"{c}\t{p}\t{i}\t{r}\t{a}\t.\t.\t.\n" for c, p, i, r, a in [
        ("c1", 0, "telomere", "A", "G"), ("c1", 2, "same", "C", "C"), ("c1", 2, "iupac", "C", "R"),
        ("c1", 3, "nonref", "G", "<*>"), ("c1", 4, "bnd", "T", ".T"), ("c1", 5, "mismatch", "T", "G"),
        ("c1", 39, "over", "GTA", "G"), ("zz", 1, "contig", "A", "G"), ("c1", 6, "gap", "A", "."),
        ("c1", 7, "star", "A", "*,C"),
    ])  # fmt: skip
    reader = read_variants(small(body), tmp_path / "c1.fa", ref_policy="skip")
    assert list(reader) == [Variant("c1", 6, "A", "C")]
    assert {r for r in SKIP_REASONS if reader.summary.skipped[r]} == set(SKIP_REASONS)
    assert reader.summary.balanced and reader.summary.alleles == 11


_ALLELES = ["A", "C", "G", "T", "AC", "CA", "ACG", "N", "*", "<DEL>", "C[c1:5[", "R"]


@st.composite
def vcf_rows(draw):
    rows = []
    for pos in sorted(draw(st.lists(st.integers(0, 45), max_size=12))):
        contig = draw(st.sampled_from(["c1", "c1", "c1", "zz"]))
        ref = draw(st.sampled_from(["A", "C", "G", "T", "AC", "GG", C1[max(pos - 1, 0) : pos + 1] or "A"]))
        alts = draw(st.lists(st.sampled_from(_ALLELES), max_size=3))
        rows.append(f"{contig}\t{pos}\t.\t{ref}\t{','.join(alts) or '.'}\t.\t.\t.\n")
    return "".join(rows)


@SETTINGS
@given(body=vcf_rows(), with_fasta=st.booleans())
def test_accounting_invariant(small, tmp_path, body, with_fasta):
    """Every allele of every record is either yielded or skipped with exactly one reason."""
    reader = read_variants(small(body), tmp_path / "c1.fa" if with_fasta else None, ref_policy="skip")
    variants = []
    for v in reader:
        variants.append(v)
        assert reader.summary.balanced  # holds while iterating, after each record
    s = reader.summary
    assert s.records == body.count("\n")
    assert s.alleles == sum(max(1, len([a for a in row.split("\t")[4].split(",") if a != "."]))
                            for row in body.splitlines())  # fmt: skip
    assert s.yielded == len(variants) == sum(s.kinds.values()) and s.balanced
    if with_fasta:
        for v in variants:
            assert C1[v.pos : v.end] == v.ref


# -- normalization properties --------------------------------------------------------------------------------


@st.composite
def indel_cases(draw):
    """(reference, haplotype) differing by one insertion or deletion, on repeat-rich sequences."""
    alphabet = draw(st.sampled_from(["A", "AC", "ACG", "ACGT"]))
    seq = draw(st.text(alphabet, min_size=2, max_size=24))
    at = draw(st.integers(0, len(seq)))
    if draw(st.booleans()) and at < len(seq) - 1:
        size = draw(st.integers(1, min(4, len(seq) - at - 1)))
        return seq, seq[:at] + seq[at + size :]
    return seq, seq[:at] + draw(st.text(alphabet, min_size=1, max_size=4)) + seq[at:]


def representations(seq: str, hap: str) -> list[tuple[int, str, str]]:
    """Every VCF-valid (pos, ref, alt) turning seq into hap (non-empty alleles, ref != alt)."""
    d = len(hap) - len(seq)
    out = []
    for s in range(len(seq)):
        for e in range(s + 1, len(seq) + 1):
            if e + d > s and seq[:s] == hap[:s] and seq[e:] == hap[e + d :]:
                out.append((s, seq[s:e], hap[s : e + d]))
    return out


@settings(max_examples=300, deadline=None)
@given(case=indel_cases())
def test_equivalent_indels_normalize_to_one_variant(case):
    seq, hap = case
    reps = representations(seq, hap)
    assert reps
    fetch = seq.__getitem__
    results = {normalize(p, r, a, lambda s, e: fetch(slice(s, e))) for p, r, a in reps}
    assert len(results) == 1
    pos, ref, alt = results.pop()
    variant = Variant("c", pos, ref, alt)
    assert variant.apply(seq) == hap
    assert variant.kind in ("insertion", "deletion") and min(len(ref), len(alt)) == 1
    # left-aligned: no parsimonious equivalent (one allele a single base) starts further left
    assert pos == min(p for p, r, a in reps if min(len(r), len(a)) == 1)


@settings(max_examples=300, deadline=None)
@given(seq=st.text("ACGT", min_size=1, max_size=20), data=st.data())
def test_normalization_preserves_the_haplotype_and_is_idempotent(seq, data):
    start = data.draw(st.integers(0, len(seq) - 1))
    end = data.draw(st.integers(start + 1, len(seq)))
    alt = data.draw(st.text("ACGT", min_size=1, max_size=6).filter(lambda a: a != seq[start:end]))
    fetch = lambda s, e: seq[s:e]  # noqa: E731
    for f in (fetch, None):
        pos, ref, alt_n = normalize(start, seq[start:end], alt, f)
        variant = Variant("c", pos, ref, alt_n)
        assert variant.apply(seq) == seq[:start] + alt + seq[end:]
        assert normalize(pos, ref, alt_n, f) == (pos, ref, alt_n)
        assert ref and alt_n and ref != alt_n


def test_normalize_examples():
    seq = "GGCACACAT"
    fetch = lambda s, e: seq[s:e]  # noqa: E731
    assert normalize(6, "CA", "CACA", fetch) == (1, "G", "GCA")  # insertion of CA slides into the anchor G
    assert normalize(5, "ACAT", "AT", fetch) == (1, "GCA", "G")
    assert normalize(0, "GG", "G", fetch) == (0, "GG", "G")  # contig start: anchored on the right
    assert normalize(3, "ACA", "GCA", fetch) == (3, "A", "G")
    assert normalize(3, "acat", "agat", None) == (4, "C", "G")


def test_apply_checks_the_reference():
    with pytest.raises(InconsistentDataError):
        Variant("c", 1, "A", "G").apply("CCC")


# -- htslib messages and malformed files ---------------------------------------------------------------------


def test_htslib_warnings_are_captured_and_logged(small, tmp_path, caplog, capfd):
    body = "c1\t2\ta\tC\tT\t.\t.\t.\nc9\t3\tb\tG\tA\t.\t.\t.\n"
    with caplog.at_level(logging.WARNING, logger="genolong.io.variants"):
        reader = read_variants(small(body))
        assert len(list(reader)) == 2
    assert reader.summary.messages == ["line 5: Contig 'c9' is not defined in the header."]
    assert "t.vcf: htslib: line 5: Contig 'c9'" in caplog.text
    assert "[W::" not in capfd.readouterr().err


def test_parse_htslib_messages():
    text = "[W::bcf_hdr_parse_line] Incomplete header line, trying to proceed anyway:\n\t[##INFO=<ID=X\n"
    text += "[E::f] bad\n"
    assert parse_htslib_messages(text) == [
        ("W", "Incomplete header line, trying to proceed anyway: [##INFO=<ID=X"),
        ("E", "bad"),
    ]


BAD_VCFS = {
    "position": (
        HEADER + "c1\t2\t.\tC\tT\t.\t.\t.\nc1\tabc\t.\tA\tG\t.\t.\t.\n",
        5,
        "Could not parse the position 'abc'",
    ),
    "columns": (HEADER + "c1\t2\t.\tC\n", 4, "cannot parse record 1: it has 4 tab-separated columns where"),
    "seven_columns": (HEADER + "c1\t2\t.\tC\tT\t.\t.\t.\nc1\t3\t.\tC\tT\t.\tPASS\n", 5, "record 2: it has 7 tab"),
    "spaces": (HEADER + "c1 2 . C T . . .\n", 4, "1 tab-separated column where a VCF record needs at least 8 (its "
               "fields are separated by spaces, not tabs)"),
    "blank": (HEADER + "c1\t2\t.\tC\tT\t.\t.\t.\n\n", 5, "cannot parse record 2: it is a blank line"),
    "no_chrom_line": ("##fileformat=VCFv4.2\nc1\t2\t.\tC\tT\t.\t.\t.\n", None, "no '#CHROM POS ID REF ALT"),
    "not_vcf": ("chrom\tstart\tend\nc1\t2\t3\n", 1, "expected ##fileformat=VCFv4.x"),
    "empty": ("", None, "the file is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_VCFS))
def test_malformed_vcf(tmp_path, case, cli):
    text, line, message = BAD_VCFS[case]
    path = tmp_path / f"{case}.vcf"
    path.write_text(text)
    with pytest.raises(MalformedInputError) as info:
        list(read_variants(path))
    assert message in str(info.value) and str(path) in str(info.value)
    assert info.value.line == line
    assert_one_line_error(cli("inspect", path), path, 4)


def test_plain_gzip_is_refused_with_a_hint(tmp_path, vcf, cli):
    path = tmp_path / "plain.vcf.gz"
    path.write_bytes(gzip.compress(gzip.decompress(vcf.read_bytes())))
    with pytest.raises(MalformedInputError, match="bgzip"):
        read_variants(path)
    assert_one_line_error(cli("inspect", path), path, code=4)


def test_bgzip_without_its_end_block_is_called_truncated(tmp_path, vcf, cli):
    path = tmp_path / "cut.vcf.gz"
    path.write_bytes(vcf.read_bytes()[:-28])  # the 28-byte BGZF end-of-file block
    with pytest.raises(MalformedInputError, match="looks truncated"):
        read_variants(path)
    assert_one_line_error(cli("inspect", path), path, code=4)


def test_a_missing_allele_in_an_alt_list_is_missing_alt(small):
    reader = read_variants(small("c1\t2\ta\tC\tT,.\t.\t.\t.\n"))
    assert len(list(reader)) == 1 and dict(reader.summary.skipped) == {"missing_alt": 1}


def test_missing_file_and_bad_options(tmp_path, vcf, cli):
    with pytest.raises(InputMissingError):
        read_variants(tmp_path / "none.vcf")
    with pytest.raises(InputMissingError):
        read_variants(vcf, tmp_path / "none.fa")
    with pytest.raises(UsageError):
        read_variants(vcf, ref_policy="ignore")
    reader = read_variants(vcf)
    list(reader)
    with pytest.raises(UsageError, match="iterated once"):
        list(reader)
    assert_one_line_error(cli("inspect", tmp_path / "none.vcf"), tmp_path / "none.vcf", code=3)


def assert_one_line_error(result, path, code):
    """Exit code; one 'genolong: error:' line naming the file (log lines may come first); no traceback."""
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("genolong: error:")]
    assert len(errors) == 1 and str(path) in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "[E::" not in result.stderr and "[W::" not in result.stderr


# -- the command line ----------------------------------------------------------------------------------------


def test_cli_inspect_bundled_vcf_with_reference(cli, data_dir):
    result = cli("inspect", "data/ecoli_200k.variants.vcf.gz", "--fasta", "data/ecoli_200k.fa",
                 cwd=data_dir.parent)  # fmt: skip
    assert result.returncode == 0, result.stderr
    for reason in SKIP_REASONS:
        assert f"{reason}:" in result.stdout
    assert "ref_mismatch: 1" in result.stdout and "variants: 10" in result.stdout


def test_cli_reference_errors(cli, small, tmp_path):
    path = small("c1\t2\t.\tC\tT\t.\t.\t.\nc9\t3\t.\tG\tA\t.\t.\t.\n",
                 header=HEADER.replace("length=40", "length=41"))  # fmt: skip
    assert_one_line_error(cli("inspect", path, "--fasta", tmp_path / "c1.fa"), path, code=5)
    ok = small("c1\t2\t.\tC\tT\t.\t.\t.\nc9\t3\t.\tG\tA\t.\t.\t.\n", name="ok.vcf")
    result = cli("inspect", ok, "--json", "true")
    assert result.returncode == 0 and '"htslib_warnings": 1' in result.stdout
    assert "Contig 'c9' is not defined" in result.stderr and "[W::" not in result.stderr


def test_htslib_capture_is_reentrant_and_thread_safe(tmp_path):
    import os
    import threading

    from genolong.io.htslib import HtslibLog

    real_stderr = os.fstat(2)
    with HtslibLog() as outer:
        with HtslibLog() as inner:
            os.write(2, b"[W::vcf_parse] inner message\n")
            assert inner.poll() == [("W", "inner message")]
        assert os.fstat(2).st_ino != real_stderr.st_ino  # still redirected: only the outermost block restores
        outer.poll()
    assert os.fstat(2).st_ino == real_stderr.st_ino

    errors = []

    def read_many():
        try:
            for _ in range(20):
                with HtslibLog():
                    pass
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=read_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and os.fstat(2).st_ino == real_stderr.st_ino
