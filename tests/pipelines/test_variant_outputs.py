"""score-variants outputs (TSV, parquet, annotated VCF), chunked streaming, and the CLI's input cases."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pysam
import pytest
import torch

from genolong.models import GenoLongForCausalLM
from genolong.pipelines.variant_effect import VariantScorer
from genolong.pipelines.variant_outputs import write_variant_scores
from genolong.tokenizers.factory import build_tokenizer, model_config_fields
from tests.conftest import DATA, REPO, run_cli
from tests.models.helpers import tiny_config

FASTA = DATA / "ecoli_200k.fa"
VCF = DATA / "ecoli_200k.variants.vcf.gz"
CONTIG = "MIIJ01000039.1"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random-initialised tiny causal model saved as a save_pretrained directory (the CLI's input)."""
    torch.manual_seed(0)
    tokenizer = build_tokenizer("nucleotide")
    model = GenoLongForCausalLM(tiny_config("(mamba2,attention)", **model_config_fields(tokenizer),
                                            max_position=256))  # fmt: skip
    out = tmp_path_factory.mktemp("model")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def scorer(model_dir):
    with VariantScorer.from_pretrained(model_dir, fasta=FASTA, window=41, batch_size=4) as s:
        yield s


@pytest.fixture(scope="module")
def table(scorer):
    return scorer.score_vcf(VCF, progress=False)


def test_streamed_chunks_give_the_same_table(scorer, table):
    chunked = pd.concat(list(scorer.iter_score_vcf(VCF, chunk_size=3, progress=False)), ignore_index=True)
    pd.testing.assert_frame_equal(chunked, table, atol=1e-5, rtol=1e-5)
    assert scorer.summary["alleles"] == len(table) == 16


def test_tsv_gz_and_parquet_hold_the_table(scorer, table, tmp_path):
    write_variant_scores(scorer, VCF, tmp_path / "s.parquet", chunk_size=5, progress=False)
    write_variant_scores(scorer, VCF, tmp_path / "s.tsv.gz", progress=False)
    parquet = pd.read_parquet(tmp_path / "s.parquet")
    assert list(parquet.columns) == list(table.columns) and parquet["pos"].dtype == np.int64
    np.testing.assert_allclose(parquet["score"], table["score"], atol=1e-6)
    assert parquet["status"].tolist() == table["status"].tolist()
    with gzip.open(tmp_path / "s.tsv.gz", "rt") as fh:
        tsv = pd.read_csv(fh, sep="\t")
    np.testing.assert_allclose(tsv["score"], table["score"], rtol=1e-6)
    assert tsv["id"].tolist() == table["id"].tolist()
    assert not list(tmp_path.glob("*partial*"))  # written under a temporary name, then renamed


def test_annotated_vcf_keeps_every_record_and_declares_its_fields(scorer, table, tmp_path):
    out = tmp_path / "annotated.vcf.gz"
    write_variant_scores(scorer, VCF, out, chunk_size=4, progress=False)  # chunks end between records
    with pysam.VariantFile(str(VCF)) as source, pysam.VariantFile(str(out)) as annotated:
        for key in ("GL_SCORE", "GL_SCORE_FWD", "GL_SCORE_REV", "GL_STATUS"):
            assert annotated.header.info[key].number == "A"
        pairs = list(zip(source, annotated, strict=True))
    assert len(pairs) == 14
    for number, (before, after) in enumerate(pairs, 1):
        assert (before.chrom, before.pos, before.ref, before.alts) == (after.chrom, after.pos, after.ref, after.alts)
        rows = table[table["record"] == number].sort_values("allele")
        if not before.alts:
            assert "GL_SCORE" not in after.info and rows["status"].tolist() == ["missing_alt"]
            continue
        assert list(after.info["GL_STATUS"]) == rows["status"].tolist()
        for value, expected in zip(after.info["GL_SCORE"], rows["score"], strict=True):
            assert (value is None) if np.isnan(expected) else value == pytest.approx(expected, rel=1e-5)


def _vcf(path, records: list[str], contig: str = CONTIG) -> None:
    header = ["##fileformat=VCFv4.2", f"##contig=<ID={contig},length=200000>",
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]  # fmt: skip
    path.write_text("\n".join(header + [f"{contig}\t{r}\t.\tPASS\t." for r in records]) + "\n")


def test_cli_reference_mismatch_policy_and_contig_aliases(model_dir, tmp_path):
    common = ["score-variants", "--model", model_dir, "--fasta", FASTA, "--window", "41"]
    error = run_cli(*common, "--vcf", VCF, "--output", tmp_path / "e.tsv", "--ref_policy", "error", cwd=REPO)
    assert error.returncode == 5 and "Traceback" not in error.stderr
    [message] = [line for line in error.stderr.splitlines() if line.startswith("genolong: error")]
    assert "ecoli_200k.variants.vcf.gz" in message and "24000" in message

    ref = pysam.FastaFile(str(FASTA)).fetch(CONTIG, 499, 503).upper()
    aliased = tmp_path / "chr.vcf"
    _vcf(aliased, [f"500\tsnv\t{ref[0]}\t{'A' if ref[0] != 'A' else 'C'}",
                   f"501\tdeletion\t{ref[1:4]}\t{ref[1]}"], contig=f"chr{CONTIG}")  # fmt: skip
    plain = run_cli(*common, "--vcf", aliased, "--output", tmp_path / "a.tsv", cwd=REPO)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert pd.read_csv(tmp_path / "a.tsv", sep="\t")["status"].tolist() == ["unknown_contig"] * 2
    assert "--aliases" in plain.stderr
    matched = run_cli(*common, "--vcf", aliased, "--output", tmp_path / "b.tsv", "--aliases", cwd=REPO)
    assert matched.returncode == 0, matched.stderr[-2000:]
    rows = pd.read_csv(tmp_path / "b.tsv", sep="\t")
    assert rows["status"].tolist() == ["scored"] * 2 and rows["kind"].tolist() == ["SNV", "deletion"]
    assert rows["contig"].tolist() == [f"chr{CONTIG}"] * 2 and np.isfinite(rows["score"]).all()  # as in the VCF
    assert all(v.startswith(f"{CONTIG}:") for v in rows["variant"])  # the FASTA's name


def test_cli_annotated_vcf_and_bad_outputs(model_dir, tmp_path):
    common = ["score-variants", "--model", model_dir, "--fasta", FASTA, "--vcf", VCF, "--window", "41"]
    missing_dir = run_cli(*common, "--output", tmp_path / "no" / "x.tsv", cwd=REPO)
    assert missing_dir.returncode == 2 and "Traceback" not in missing_dir.stderr
    out = tmp_path / "x.vcf.gz"
    ok = run_cli(*common, "--output", out, "--window_mode", "upstream", cwd=REPO)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "scored: 10" in ok.stderr and "symbolic: 1" in ok.stderr
    with pysam.VariantFile(str(out)) as vcf:
        assert "upstream" in str(vcf.header)
        statuses = [s for record in vcf if record.alts for s in record.info["GL_STATUS"]]
    assert statuses.count("scored") == 10 and "breakend" in statuses


def test_cli_vcf_output_declares_what_the_input_did_not_and_rescoring_replaces(model_dir, tmp_path):
    ref = pysam.FastaFile(str(FASTA)).fetch(CONTIG, 999, 1001).upper()
    bare = tmp_path / "bare.vcf"  # no ##contig line, an undeclared INFO field: htslib would abort writing it
    bare.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                    f"{CONTIG}\t1000\ta\t{ref[0]}\t{'A' if ref[0] != 'A' else 'C'}\t.\tPASS\tXX=1\n"
                    f"{CONTIG}\t1001\tb\t{ref[1]}\t{'A' if ref[1] != 'A' else 'C'}\t.\tPASS\t.\n")  # fmt: skip
    common = ["score-variants", "--model", model_dir, "--fasta", FASTA, "--window", "41"]
    first = run_cli(*common, "--vcf", bare, "--output", tmp_path / "once.vcf.gz", cwd=REPO)
    assert first.returncode == 0, first.stderr[-2000:]
    again = run_cli(*common, "--vcf", tmp_path / "once.vcf.gz", "--output", tmp_path / "twice.vcf.gz", cwd=REPO)
    assert again.returncode == 0, again.stderr[-2000:]
    for name in ("once.vcf.gz", "twice.vcf.gz"):
        with pysam.VariantFile(str(tmp_path / name)) as vcf:
            header = str(vcf.header)
            records = list(vcf)
        assert [r.info["GL_STATUS"] for r in records] == [("scored",), ("scored",)] and records[0].info["XX"]
        assert header.count("##genolong_variant_scores") == 1 and header.count("ID=GL_SCORE,") == 1
        assert f"##contig=<ID={CONTIG}>" in header


def test_cli_refuses_bad_outputs_and_inputs_before_work(model_dir, tmp_path):
    common = ["score-variants", "--model", model_dir, "--fasta", FASTA, "--window", "41"]
    bad_dtype = run_cli(*common, "--vcf", VCF, "--output", tmp_path / "d.tsv", "--dtype", "fp8", cwd=REPO)
    assert bad_dtype.returncode == 2 and "--dtype" in bad_dtype.stderr and "Traceback" not in bad_dtype.stderr
    (tmp_path / "folder.tsv").mkdir()
    folder = run_cli(*common, "--vcf", VCF, "--output", tmp_path / "folder.tsv", cwd=REPO)
    assert folder.returncode == 2 and "folder" in folder.stderr and "Traceback" not in folder.stderr
    empty = tmp_path / "empty.vcf"
    _vcf(empty, [])
    ok = run_cli(*common, "--vcf", empty, "--output", tmp_path / "empty.tsv", cwd=REPO)
    assert ok.returncode == 0 and (tmp_path / "empty.tsv").read_text().startswith("contig\tpos\tid\tref\talt")
    warned = run_cli(*common, "--vcf", VCF, "--output", tmp_path / "w.tsv", "--ref_policy", "warn", cwd=REPO)
    assert warned.returncode == 0, warned.stderr[-2000:]
    rows = pd.read_csv(tmp_path / "w.tsv", sep="\t")
    assert "ref_mismatch" not in set(rows["status"]) and "ref_mismatch_warned: 1" in warned.stderr
    vep = ["fit-vep", "--model", model_dir, "--fasta", FASTA, "--label_field", "X", "--output_dir", tmp_path / "v"]
    missing = run_cli(*vep, "--vcf", tmp_path / "nope.vcf", cwd=REPO)
    assert missing.returncode == 3 and "nope.vcf" in missing.stderr and "Traceback" not in missing.stderr
    plain_gzip = tmp_path / "plain.vcf.gz"
    plain_gzip.write_bytes(gzip.compress(empty.read_bytes()))
    gzipped = run_cli(*vep, "--vcf", plain_gzip, cwd=REPO)
    assert gzipped.returncode == 4 and "bgzip" in gzipped.stderr and not (tmp_path / "v").exists()
