"""BED and GFF3/GTF reading, spliced CDS transcripts (checked by translation on real genomes), the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from Bio.Seq import Seq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genolong.errors import InputMissingError, MalformedInputError
from genolong.io.gff import cds_transcripts, read_gff, summarize_gff
from genolong.io.intervals import Interval, merged_length, open_reference, read_bed, summarize_bed

CHLORO = "athaliana_chloroplast_NC_000932"


@pytest.fixture(scope="module")
def chloroplast(tmp_path_factory, shared_data) -> tuple[Path, Path]:
    """(FASTA, GFF3) copied out of the read-only shared folder, so the .fai is written here."""
    out = tmp_path_factory.mktemp("chloroplast")
    for suffix in (".fa", ".cds.gff3"):
        shutil.copy(shared_data / f"{CHLORO}{suffix}", out)
    return out / f"{CHLORO}.fa", out / f"{CHLORO}.cds.gff3"


def assert_one_line_error(result, path, code):
    """Exit code; one 'genolong: error:' line naming the file (log lines may come first); no traceback."""
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("genolong: error:")]
    assert len(errors) == 1 and str(path) in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "[E::" not in result.stderr and "[W::" not in result.stderr


def proteins(transcripts, fasta):
    reference = open_reference(fasta)
    for t in transcripts:
        yield t, t.sequence(reference)[t.phase :]


# -- CDS transcripts on real genomes -------------------------------------------------------------------------


def test_chloroplast_spliced_cds_translate_without_internal_stops(chloroplast):
    fasta, gff = chloroplast
    transcripts = cds_transcripts(gff)
    assert len(transcripts) == 85
    assert sum(t.spliced for t in transcripts) == 15
    assert {t.gene for t in transcripts if t.trans_spliced} == {"rps12"}
    for t, cds in proteins(transcripts, fasta):
        assert len(cds) % 3 == 0 and t.phase_consistent(), t.id
        protein = str(Seq(cds).translate(table=11))
        assert "*" not in protein[:-1] and protein.endswith("*"), (t.id, t.gene)


def test_trans_spliced_rps12_keeps_file_order(chloroplast):
    by_id = {t.id: t for t in cds_transcripts(chloroplast[1])}
    rps12 = by_id["NP_051038.1"]  # exon 1 on the minus strand, exons 2-3 on the plus strand
    assert [(s.start, s.end, s.strand) for s in rps12.segments] == [
        (69610, 69724, "-"),
        (139855, 140087, "+"),
        (140624, 140650, "+"),
    ]
    assert (rps12.contig, rps12.strand, rps12.trans_spliced) == ("NC_000932.1", "-", True)
    ycf3 = by_id["NP_051060.2"]  # minus strand, three exons: 5' exon has the highest coordinates
    assert [s.start for s in ycf3.segments] == [44465, 43523, 42583] and not ycf3.trans_spliced


def test_ecoli_cds_translate(ecoli_gff, ecoli_fasta):
    transcripts = cds_transcripts(ecoli_gff)
    assert len(transcripts) == 184 and not any(t.spliced for t in transcripts)
    for t, cds in proteins(transcripts, ecoli_fasta):
        assert len(cds) % 3 == 0
        assert "*" not in str(Seq(cds).translate(table=11))[:-1], t.id


def test_gtf_gives_the_same_transcripts(chloroplast, tmp_path):
    """A GTF listing every transcript's CDS in ascending coordinates (as many GTFs do) joins the same way."""
    gff3 = [t for t in cds_transcripts(chloroplast[1]) if not t.trans_spliced]
    lines = []
    for t in gff3:
        for s in sorted(t.segments, key=lambda s: s.start):
            lines.append(f'{s.contig}\tRefSeq\tCDS\t{s.start + 1}\t{s.end}\t.\t{s.strand}\t{s.phase}\t'
                         f'gene_id "{t.gene}"; transcript_id "{t.id}"; gene_name "{t.gene}";')  # fmt: skip
    path = tmp_path / "cds.gtf"
    path.write_text("#!genome-build test\n" + "\n".join(lines) + "\n")
    assert cds_transcripts(path) == gff3
    assert summarize_gff(path)["format"] == "GTF"


def test_read_gff_converts_to_zero_based(ecoli_gff):
    first = next(read_gff(ecoli_gff))
    assert (first.contig, first.start, first.end, first.strand, first.phase) == (
        "MIIJ01000039.1",
        204,
        945,
        "-",
        0,
    )
    assert first.attributes == {"ID": "cds1", "start_type": "ATG"} and first.line == 3


def test_gff3_details(tmp_path):
    path = tmp_path / "x.gff3"
    path.write_text(
        "##gff-version 3\n"
        "c1\t.\tgene\t1\t90\t.\t+\t.\tID=g1;Name=abc%3Bd\n"
        "c1\t.\tmRNA\t1\t90\t.\t+\t.\tID=m1;Parent=g1\n"
        "c1\t.\tmRNA\t1\t90\t.\t+\t.\tID=m2;Parent=g1\n"
        "c1\t.\tCDS\t10\t20\t.\t+\t0\tParent=m1,m2\n"
        "c1\t.\tCDS\t30\t45\t.\t+\t2\tParent=m1\n"
        "##FASTA\n>c1\nACGT\n"
    )
    assert [f.type for f in read_gff(path, feature=None)] == ["gene", "mRNA", "mRNA", "CDS", "CDS"]
    assert next(read_gff(path, feature="gene")).attributes["Name"] == "abc;d"
    m1, m2 = cds_transcripts(path)
    assert (m1.id, len(m1.segments), m2.id, len(m2.segments)) == ("m1", 2, "m2", 1)
    assert not m1.phase_consistent()  # after 11 bases in phase 0 the next segment's phase must be 1, not 2
    assert m2.phase_consistent() and m1.length == 27 and m1.gene == "abc;d"


# -- BED -----------------------------------------------------------------------------------------------------


def test_read_bed_columns_and_headers(tmp_path):
    path = tmp_path / "a.bed"
    path.write_text(
        "browser position c1:1-100\ntrack name=x\n# comment\n\n"
        "c1\t0\t10\n"
        "c1\t5\t20\tpeak1\t3.5\t-\tred\tpromoter\n"
        "c2 7 9 spaced . +\n"
    )
    a, b, c = read_bed(path)
    assert (a.contig, a.start, a.end, a.name, a.score, a.strand, a.line) == ("c1", 0, 10, None, None, None, 5)
    assert (b.name, b.score, b.strand, b.extra, b.line) == ("peak1", 3.5, "-", ("red", "promoter"), 6)
    assert (c.contig, c.start, c.end, c.name, c.score, c.strand) == ("c2", 7, 9, "spaced", None, "+")
    with pytest.raises(MalformedInputError, match=r"a.bed:5: no column 3"):
        list(read_bed(path, label_column=3))
    assert [i.label for i in read_bed(path, label_column=0)] == ["c1", "c1", "c2"]


BAD_BEDS = {
    "columns": ("c1\t0\n", "at least 3 columns"),
    "float": ("c1\t0.5\t10\n", "non-negative integers"),
    "negative": ("c1\t-1\t10\n", "non-negative integers"),
    "order": ("c1\t10\t5\n", "start 10 is after end 5"),
    "strand": ("c1\t0\t5\tn\t0\tx\n", "strand must be"),
    "score": ("c1\t0\t5\tn\thigh\n", "score must be"),
    "binary": (b"c1\t0\t5\n\xff\xfe\x00\x01\n", "not a text file"),
}


@pytest.mark.parametrize("case", sorted(BAD_BEDS))
def test_malformed_bed(tmp_path, case, cli):
    text, message = BAD_BEDS[case]
    path = tmp_path / f"{case}.bed"
    ok = "track name=t\nc1\t0\t5\n"
    path.write_bytes(text if isinstance(text, bytes) else (ok + text).encode())
    line = 2 if isinstance(text, bytes) else 3
    with pytest.raises(MalformedInputError, match=message) as info:
        list(read_bed(path))
    assert info.value.line == line and f"{case}.bed:{line}:" in str(info.value)
    assert_one_line_error(cli("inspect", path), f"{path}:{line}", 4)


_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=8)


@st.composite
def intervals(draw):
    contig = draw(
        st.from_regex(r"[A-Za-z0-9_.]{1,10}", fullmatch=True).filter(lambda c: c not in ("track", "browser"))
    )
    start = draw(st.integers(0, 10**9))
    end = draw(st.integers(start, start + 10**6))
    name = draw(st.none() | _TEXT.filter(lambda n: n != "."))
    score = draw(
        st.none() | st.integers(0, 1000).map(float) | st.floats(allow_nan=False, allow_infinity=False)
    )
    strand = draw(st.sampled_from([None, "+", "-"]))
    extra = tuple(draw(st.lists(_TEXT.filter(lambda t: len(t) <= 5) | st.just(""), max_size=3)))
    return Interval(contig, start, end, name, score, strand, extra)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(intervals(), max_size=20))
def test_bed_round_trip(tmp_path, items):
    path = tmp_path / "r.bed"
    path.write_text("".join(i.to_bed() + "\n" for i in items), encoding="utf-8")
    back = list(read_bed(path))
    assert back == items
    assert [i.line for i in back] == list(range(1, len(items) + 1))


@settings(max_examples=100, deadline=None)
@given(spans=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 50)).map(lambda t: (t[0], t[0] + t[1]))))
def test_merged_length_is_the_size_of_the_union(spans):
    assert merged_length(spans) == len({p for s, e in spans for p in range(s, e)})


# -- summaries, errors and the CLI ---------------------------------------------------------------------------


def test_summarize_bed_with_reference(tmp_path, ecoli_fasta, cli):
    path = tmp_path / "s.bed"
    path.write_text("MIIJ01000039.1\t0\t100\ta\t0\t+\nMIIJ01000039.1\t50\t150\nMIIJ01000039.1\t199990\t200010\n"
                    "chr9\t0\t10\n")  # fmt: skip
    summary = summarize_bed(path, ecoli_fasta)
    assert (summary["intervals"], summary["total_length"], summary["bases_covered"]) == (4, 230, 180)
    assert (summary["unknown_contigs"], summary["off_contig_end"]) == (1, 1)
    assert summary["strands"] == {"+": 1, ".": 3} and summary["named"] == 1
    result = cli("inspect", path, "--fasta", ecoli_fasta)
    assert result.returncode == 0 and "off_contig_end: 1" in result.stdout


def test_summarize_gff(chloroplast, cli):
    fasta, gff = chloroplast
    summary = summarize_gff(gff, fasta)
    assert summary["features"] == 104 and summary["feature_types"] == {"CDS": 104}
    assert (summary["cds_transcripts"], summary["spliced"], summary["trans_spliced"]) == (85, 15, 2)
    assert summary["cds_length_not_multiple_of_3"] == summary["phase_inconsistent"] == 0
    assert summary["off_contig_end"] == summary["unknown_contigs"] == 0
    assert summary["cds_without_strand"] == summary["cds_without_phase"] == 0
    result = cli("inspect", gff)
    assert result.returncode == 0 and "trans_spliced: 2" in result.stdout


def test_inspect_counts_cds_lines_without_a_frame(tmp_path, cli):
    gff = tmp_path / "a.gff3"
    gff.write_text("c1\t.\tCDS\t1\t9\t.\t+\t.\tID=a\nc1\t.\tCDS\t20\t29\t.\t.\t.\tID=b\n"
                   "c1\t.\tgene\t1\t29\t.\t.\t.\tID=g\n")  # fmt: skip
    summary = summarize_gff(gff)
    assert (summary["cds_without_strand"], summary["cds_without_phase"]) == (1, 2)
    result = cli("inspect", gff)
    assert result.returncode == 0 and "cds_without_phase: 2" in result.stdout


BAD_GFFS = {
    "columns": ("c1\t.\tCDS\t1\t9\t.\t+\t0\n", "9 tab-separated columns"),
    "start": ("c1\t.\tCDS\t0\t9\t.\t+\t0\tID=a\n", "1-based positive"),
    "order": ("c1\t.\tCDS\t10\t9\t.\t+\t0\tID=a\n", "after end"),
    "strand": ("c1\t.\tCDS\t1\t9\t.\tplus\t0\tID=a\n", "strand must be"),
    "phase": ("c1\t.\tCDS\t1\t9\t.\t+\t3\tID=a\n", "phase must be"),
    "attribute": ("c1\t.\tCDS\t1\t9\t.\t+\t0\tID=a;note\n", "not key=value"),
}


@pytest.mark.parametrize("case", sorted(BAD_GFFS))
def test_malformed_gff(tmp_path, case, cli):
    text, message = BAD_GFFS[case]
    path = tmp_path / f"{case}.gff3"
    path.write_text("##gff-version 3\nc1\t.\tCDS\t1\t9\t.\t+\t0\tID=ok\n" + text)
    with pytest.raises(MalformedInputError, match=message) as info:
        list(read_gff(path, feature=None))
    assert info.value.line == 3
    assert_one_line_error(cli("inspect", path), f"{path}:3", 4)


def test_bad_gtf_attributes(tmp_path, cli):
    path = tmp_path / "x.gtf"
    path.write_text('c1\t.\tCDS\t1\t9\t.\t+\t0\tgene_id "g"; transcript_id "t";\n'
                    'c1\t.\tCDS\t1\t9\t.\t+\t0\tgene_id "g; transcript_id\n')  # fmt: skip
    with pytest.raises(MalformedInputError, match="x.gtf:2: GTF attributes"):
        list(read_gff(path))
    assert_one_line_error(cli("inspect", path), f"{path}:2", 4)


def test_missing_inputs(tmp_path, ecoli_gff):
    with pytest.raises(InputMissingError):
        list(read_bed(tmp_path / "none.bed"))
    with pytest.raises(InputMissingError):
        summarize_gff(ecoli_gff, tmp_path / "none.fa")


def test_gzipped_bed(tmp_path):
    import gzip

    path = tmp_path / "z.bed.gz"
    path.write_bytes(gzip.compress(b"c1\t1\t2\n"))
    assert list(read_bed(path)) == [Interval("c1", 1, 2)]
