"""Labelled-data readers: tables, FASTA headers, BED columns, BAM coverage; their errors and exit codes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genolong.data.labelled import coverage_examples, encode_targets, read_examples
from genolong.errors import InconsistentDataError, MalformedInputError
from genolong.io.bam import Bam
from genolong.io.fasta import Fasta
from tests.conftest import DATA

CONTIG = "MIIJ01000039.1"


@pytest.fixture(scope="module")
def genome():
    with Fasta(DATA / "ecoli_200k.fa") as fasta:
        yield fasta


def test_tables_by_sequence_region_or_coordinates(genome, tmp_path):
    (tmp_path / "a.tsv").write_text("id\tsequence\tlabel\nx\tACGTN\tyes\ny\tacgt\tno\n")
    (tmp_path / "b.csv").write_text("region,label,raw score\nMIIJ01000039.1:1-10,1,0.5\n")
    (tmp_path / "c.tsv").write_text("contig\tstart\tend\tlabel\nMIIJ01000039.1\t0\t10\t2\n")
    a = read_examples(tmp_path / "a.tsv")
    assert [(e.id, e.sequence, e.target) for e in a] == [("x", "ACGTN", "yes"), ("y", "acgt", "no")]
    [b] = read_examples(tmp_path / "b.csv", genome, label_columns=["label", "raw score"])
    [c] = read_examples(tmp_path / "c.tsv", genome)
    assert b.sequence == c.sequence == genome.fetch(CONTIG, 0, 10) and b.target == ["1", "0.5"] and b.id == "line2"


def test_fasta_headers_and_bed_columns(genome, tmp_path):
    (tmp_path / "s.fa").write_text(">s1 label=enh other=x\nACGT\nAC\n>s2 label=prom\nGG\n")
    assert [(e.id, e.sequence, e.target) for e in read_examples(tmp_path / "s.fa")] == [
        ("s1", "ACGTAC", "enh"), ("s2", "GG", "prom")]  # fmt: skip
    bed = read_examples(DATA / "ecoli_200k.labels.bed", genome)
    assert len(bed) == 354 and {e.target for e in bed} == {"coding", "noncoding"}
    first = bed[0]
    assert first.sequence == genome.fetch(CONTIG, 0, 200) and first.id == "noncoding"
    (tmp_path / "score.bed").write_text(f"{CONTIG}\t5\t15\tname\t0.25\n")
    assert read_examples(tmp_path / "score.bed", genome, bed_label_column=4)[0].target == "0.25"


@pytest.mark.parametrize(
    ("name", "text", "error", "where"),
    [
        ("m.tsv", "sequence\tother\nACGT\t1\n", MalformedInputError, "m.tsv:1"),
        ("p.tsv", "sequence\tlabel\nACGT\t1\nACXT\t0\n", MalformedInputError, "p.tsv:3"),
        ("e.tsv", "sequence\tlabel\nACGT\tpos\nACGA\t\n", MalformedInputError, "e.tsv:3: missing label"),
        ("r.tsv", "region\tlabel\nMIIJ01000039.1:199990-200010\t1\n", InconsistentDataError, "199990"),
        ("h.fa", ">s1 kind=1\nACGT\n", MalformedInputError, "record 1"),
    ],
)
def test_bad_rows_name_the_file_and_line(genome, tmp_path, name, text, error, where):
    (tmp_path / name).write_text(text)
    with pytest.raises(error, match=where):
        read_examples(tmp_path / name, genome)


def test_targets_become_class_ids_or_floats():
    from genolong.data.labelled import Example

    examples = [Example("a", "A", "pos"), Example("b", "C", "neg"), Example("c", "G", "pos")]
    assert encode_targets(examples, "classification") == ([1, 0, 1], ["neg", "pos"])
    assert encode_targets(examples, "classification", ["pos", "neg"])[0] == [0, 1, 0]
    with pytest.raises(InconsistentDataError, match="'pos'"):
        encode_targets(examples, "classification", ["neg", "other"])
    assert encode_targets([Example("a", "A", "1.5"), Example("b", "C", ["2", "3"])], "regression")[0] == [
        1.5, [2.0, 3.0]]  # fmt: skip
    with pytest.raises(MalformedInputError, match="not a number"):
        encode_targets(examples, "regression")


def test_coverage_targets_are_the_read_depth(genome):
    examples = coverage_examples(DATA / "ecoli_200k.reads.bam", genome, [f"{CONTIG}:1001-1250"], 100)
    assert [e.id for e in examples] == [f"{CONTIG}:1001-1100", f"{CONTIG}:1101-1200", f"{CONTIG}:1201-1250"]
    with Bam(DATA / "ecoli_200k.reads.bam") as bam:
        depth = bam.coverage(CONTIG, 1000, 1250)
    targets = np.concatenate([e.target for e in examples])  # (250, 1)
    assert targets.shape == (250, 1) and depth.max() > 0
    np.testing.assert_allclose(targets[:, 0], np.log1p(depth), rtol=1e-6)
    assert all(len(e.sequence) == len(e.target) for e in examples)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.text("ACGTN", min_size=1, max_size=30), st.sampled_from(["a", "b", "c"])),
                min_size=1, max_size=10))  # fmt: skip
def test_table_round_trip(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("rt") / "t.tsv"
    path.write_text("sequence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows))
    assert [(e.sequence, e.target) for e in read_examples(path)] == rows
