"""Variant-effect scoring on the bundled genome and VCF with a tiny causal model trained for 3 steps."""

from __future__ import annotations

import copy
import csv

import numpy as np
import pytest
import torch

from genolong.errors import NonFiniteError
from genolong.io.alleles import Variant
from genolong.pipelines.variant_effect import COLUMNS, VariantScorer
from genolong.tokenizers.alphabet import reverse_complement
from tests.conftest import DATA, REPO, run_cli

FASTA = DATA / "ecoli_200k.fa"
VCF = DATA / "ecoli_200k.variants.vcf.gz"
CONTIG = "MIIJ01000039.1"
WINDOW = 129  # odd: an SNV gets 64 bases on each side
QUICK = [  # dropout, so that scoring outside eval mode would show
    "--model.init_args.model_overrides", '{"mixers": "hyena*2", "d_model": 32, "dropout": 0.3}',
    "--trainer.max_steps", "3", "--data.init_args.tokens_per_step", "1024",
    "--data.init_args.val_regions", '["MIIJ01000039.1:199001-200000"]', "--trainer.enable_progress_bar", "false",
]  # fmt: skip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny causal model trained for 3 steps on the bundled genome through the CLI, exported."""
    root = tmp_path_factory.mktemp("run")
    out = run_cli("fit", "--config", REPO / "configs" / "hyena" / "tiny.yaml", *QUICK,
                  "--trainer.default_root_dir", root, "--checkpoint.dirpath", root / "ckpt", cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    exported = run_cli("export", root / "ckpt" / "last.ckpt", root / "model", cwd=REPO)
    assert exported.returncode == 0, exported.stderr[-2000:]
    return root / "model"


@pytest.fixture(scope="module")
def scorer(model_dir):
    with VariantScorer.from_pretrained(model_dir, fasta=FASTA, window=WINDOW, batch_size=8) as s:
        yield s


@pytest.fixture(scope="module")
def bundled(scorer):
    table = scorer.score_vcf(VCF, ref_policy="skip", progress=False)
    return table, scorer.summary


def read_genome(path) -> str:
    """The single contig of a FASTA, read here without genolong."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith(">") and sum(line.startswith(">") for line in lines) == 1
    return "".join(lines[1:]).upper()


def test_bundled_vcf_one_row_per_allele_and_every_allele_accounted_for(bundled):
    table, summary = bundled
    assert list(table.columns) == list(COLUMNS)
    assert summary["records"] == 14 and len(table) == summary["alleles"] == 16
    scored = table[table["status"] == "scored"]
    assert summary["scored"] == len(scored) == summary["variants"] == 10
    assert summary["alleles"] == summary["scored"] + sum(summary["skipped"].values())
    assert table["status"].value_counts().drop("scored").to_dict() == {
        reason: n for reason, n in summary["skipped"].items() if n
    }
    assert {"symbolic", "breakend", "missing_alt", "spanning_deletion", "out_of_bounds"} <= set(table["status"])
    assert table["record"].is_monotonic_increasing and table["record"].nunique() == 14
    multi = table[table["id"] == "multiallelic"]
    assert multi["allele"].tolist() == [1, 2] and set(multi["kind"]) == {"deletion", "SNV"}
    assert multi["alt"].tolist() == ["A", "CG"] and multi["variant"].tolist()[1] == "MIIJ01000039.1:2000:A>C"
    assert set(scored["kind"]) == {"SNV", "MNV", "insertion", "deletion"}
    assert np.isfinite(scored[["score", "score_forward", "score_reverse"]].to_numpy()).all()
    np.testing.assert_allclose(scored["score"], (scored["score_forward"] + scored["score_reverse"]) / 2)
    assert table.loc[table["status"] != "scored", "score"].isna().all()


def test_ref_mismatch_record_gets_a_row_with_its_reason(bundled):
    table, summary = bundled
    assert summary["skipped"]["ref_mismatch"] == 1
    row = table[table["id"] == "ref_mismatch"].iloc[0]
    assert row["status"] == "ref_mismatch" and np.isnan(row["score"]) and row["pos"] == 24000


def _full_log_prob(model, tokenizer, seq: str) -> float:
    """Sum over tokens 1.. of log P(token | previous tokens) from one forward pass over the whole window."""
    ids = torch.as_tensor(tokenizer.encode(seq), dtype=torch.long)[None]
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits.double(), dim=-1)[0]
    return float(logp[:-1].gather(-1, ids[0, 1:, None]).sum())


def test_snv_llr_equals_two_full_forward_passes(bundled, model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import genolong  # noqa: F401  (registers the classes)

    table, _ = bundled
    row = table[table["id"] == "snv_cds"].iloc[0]
    pos = 299  # VCF POS 300
    assert row["pos"] == 300 and row["window_start"] == pos - 64
    genome = read_genome(FASTA)
    ref = genome[pos - 64 : pos + 65]
    alt = ref[:64] + "A" + ref[65:]
    assert ref[64] == "T"
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    forward = _full_log_prob(model, tokenizer, alt) - _full_log_prob(model, tokenizer, ref)
    rc = reverse_complement
    reverse = _full_log_prob(model, tokenizer, rc(alt)) - _full_log_prob(model, tokenizer, rc(ref))
    assert row["score_forward"] == pytest.approx(forward, abs=1e-4)
    assert row["score_reverse"] == pytest.approx(reverse, abs=1e-4)
    assert row["score"] == pytest.approx((forward + reverse) / 2, abs=1e-4)
    assert forward != pytest.approx(reverse, abs=1e-6)  # the two strands are really different computations


def test_reverse_complemented_genome_gives_the_same_llr(bundled, scorer, tmp_path):
    table, _ = bundled
    genome = read_genome(FASTA)
    length = len(genome)
    rc_fasta = tmp_path / "rc.fa"
    rc_fasta.write_text(f">{CONTIG}\n" + "\n".join(
        (rcg := reverse_complement(genome))[i : i + 80] for i in range(0, length, 80)) + "\n")  # fmt: skip
    chosen = table[table["id"].isin(["snv_intergenic", "snv_cds", "edge_last_snv"])]
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    rc_vcf = tmp_path / "rc.vcf"
    body = [f"{CONTIG}\t{length - r.pos + 1}\t{r.id}\t{comp[r.ref]}\t{comp[r.alt]}\t.\tPASS\t."
            for r in chosen.itertuples()]  # fmt: skip
    rc_vcf.write_text("##fileformat=VCFv4.2\n" + f"##contig=<ID={CONTIG},length={length}>\n"
                      "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + "\n".join(sorted(body, key=lambda
                      line: int(line.split("\t")[1]))) + "\n")  # fmt: skip
    assert rcg[length - 300] == "A"  # the reverse complement of the T at POS 300
    with VariantScorer(scorer.model, scorer.tokenizer, rc_fasta, window=WINDOW) as rc_scorer:
        rc_table = rc_scorer.score_vcf(rc_vcf, ref_policy="error", progress=False)
        assert rc_scorer.summary["scored"] == 3
    for r in chosen.itertuples():
        other = rc_table[rc_table["id"] == r.id].iloc[0]
        assert other["score"] == pytest.approx(r.score, abs=1e-4)
        assert other["score_forward"] == pytest.approx(r.score_reverse, abs=1e-4)
        assert other["window_start"] == length - (r.window_start + WINDOW)


def test_variants_at_the_contig_ends_get_shifted_windows(bundled, scorer):
    table, _ = bundled
    length = scorer.fasta.lengths[CONTIG]
    last = table[table["id"] == "edge_last_snv"].iloc[0]
    assert last["pos"] == length and last["window_start"] == length - WINDOW
    first_base = scorer.fasta.fetch(CONTIG, 0, 1).upper()
    other = "A" if first_base != "A" else "C"
    first = scorer.score([Variant(CONTIG, 0, first_base, other, id="first")], progress=False)
    assert first["window_start"].tolist() == [0] and np.isfinite(first["score"]).all()
    edge_deletion = table[table["id"] == "edge_first_deletion"].iloc[0]
    assert edge_deletion["window_start"] == 0 and np.isfinite(edge_deletion["score"])


def test_variants_longer_than_half_the_window_are_skipped_and_counted(scorer):
    with VariantScorer(scorer.model, scorer.tokenizer, scorer.fasta, window=8) as small:
        seq = small.fasta.fetch(CONTIG, 1000, 1006).upper()
        variants = [Variant(CONTIG, 1000, seq, seq[0]), Variant(CONTIG, 1000, seq[:2], seq[0])]
        table = small.score(variants, progress=False)
    assert table["status"].tolist() == ["too_long_for_window", "scored"]
    assert np.isnan(table["score"][0]) and np.isfinite(table["score"][1])
    assert table["window_start"][1] == 1000 - 3  # flank (8 - 2) // 2 = 3


def test_no_rc_average_scores_the_forward_strand_only(scorer):
    with VariantScorer(scorer.model, scorer.tokenizer, scorer.fasta, window=WINDOW, rc_average=False) as fwd:
        base = fwd.fasta.fetch(CONTIG, 5000, 5001).upper()
        table = fwd.score([Variant(CONTIG, 5000, base, "A" if base != "A" else "G")], progress=False)
    assert np.isnan(table["score_reverse"]).all() and (table["score"] == table["score_forward"]).all()


def test_unknown_bases_and_strands_without_context_are_never_scored_as_zero(scorer):
    length = scorer.fasta.lengths[CONTIG]
    base = scorer.fasta.fetch(CONTIG, 5000, 5001).upper()
    n_alleles = scorer.score([Variant(CONTIG, 5000, base, "N"), Variant(CONTIG, 5000, base, base + "NNN")],
                             progress=False)  # fmt: skip
    assert n_alleles["status"].tolist() == ["ambiguous_bases"] * 2 and n_alleles["score"].isna().all()

    def snv(pos: int) -> Variant:
        ref = scorer.fasta.fetch(CONTIG, pos, pos + 1).upper()
        return Variant(CONTIG, pos, ref, "A" if ref != "A" else "C")

    with VariantScorer(scorer.model, scorer.tokenizer, scorer.fasta, window=WINDOW, window_mode="upstream") as up:
        ends = up.score([snv(0), snv(length - 1)], progress=False)
    # at the contig start nothing precedes the allele on the forward strand; at the end, on the reverse one
    assert ends["status"].tolist() == ["scored"] * 2
    assert np.isnan(ends["score_forward"][0]) and ends["score"][0] == ends["score_reverse"][0] != 0
    assert np.isnan(ends["score_reverse"][1]) and ends["score"][1] == ends["score_forward"][1] != 0
    with VariantScorer(scorer.model, scorer.tokenizer, scorer.fasta, window=2) as one_base:
        assert one_base.score([snv(5000)], progress=False)["status"].tolist() == ["no_context"]


def test_scores_that_are_not_finite_stop_the_run(scorer):
    broken = copy.deepcopy(scorer.model)
    with torch.no_grad():
        next(broken.parameters()).fill_(float("nan"))
    base = scorer.fasta.fetch(CONTIG, 5000, 5001).upper()
    with VariantScorer(broken, scorer.tokenizer, scorer.fasta, window=WINDOW) as nan_scorer:
        with pytest.raises(NonFiniteError, match=f"{CONTIG}:5001") as caught:
            nan_scorer.score([Variant(CONTIG, 5000, base, "A" if base != "A" else "G")], progress=False)
    assert caught.value.exit_code == 7


def test_cli_exit_codes_and_tsv(model_dir, tmp_path):
    common = ["--model", model_dir, "--fasta", FASTA, "--window", "65"]
    missing = run_cli("score-variants", *common, "--vcf", tmp_path / "nope.vcf.gz",
                      "--output", tmp_path / "out.tsv", cwd=REPO)  # fmt: skip
    assert missing.returncode == 3, missing.stderr[-2000:]
    assert "nope.vcf.gz" in missing.stderr and "Traceback" not in missing.stderr
    bad = run_cli("score-variants", *common, "--vcf", VCF, "--output", tmp_path / "out.csv", cwd=REPO)
    assert bad.returncode == 2 and ".parquet" in bad.stderr and "Traceback" not in bad.stderr
    out_file = tmp_path / "out.tsv"
    ok = run_cli("score-variants", *common, "--vcf", VCF, "--output", out_file, "--no_rc_average", cwd=REPO)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "ref_mismatch: 1" in ok.stderr and "scored: 10" in ok.stderr
    rows = list(csv.DictReader(out_file.open(), delimiter="\t"))
    assert list(rows[0]) == list(COLUMNS) and len(rows) == 16
    scored = [row for row in rows if row["status"] == "scored"]
    assert len(scored) == 10 and all(row["score_reverse"] == "" for row in rows)
    assert all(float(row["score"]) == float(row["score_forward"]) for row in scored)


def test_variants_made_in_python_get_the_vcf_readers_checks_and_normalization(scorer):
    genome = scorer.fasta.fetch(CONTIG, 0, 20000).upper()
    run = next(i for i in range(1, 19990) if genome[i : i + 3] == genome[i] * 3 and genome[i - 1] != genome[i])
    base, other = genome[5000], "A" if genome[5000] != "A" else "C"
    variants = [
        Variant("chrZ", 5000, base, other),  # a contig the FASTA lacks
        Variant(CONTIG, 5000, base, "R"),  # an IUPAC code is not a base to score
        Variant(CONTIG, 5000, base, base),
        Variant(CONTIG, 5000, other, base),  # REF disagrees with the reference
        Variant(CONTIG, scorer.fasta.lengths[CONTIG], "A", "C"),
        Variant(CONTIG, 5000, base, other),
        Variant(CONTIG, 4999, genome[4999:5001], genome[4999] + other),  # the same SNV with a padding base
        Variant(CONTIG, run - 1, genome[run - 1 : run + 1], genome[run - 1]),  # a deletion in a run, left-aligned
        Variant(CONTIG, run + 1, genome[run + 1 : run + 3], genome[run + 1]),  # the same deletion, shifted right
    ]
    table = scorer.score(variants, progress=False)
    assert table["status"].tolist() == ["unknown_contig", "invalid_bases", "alt_equals_ref", "ref_mismatch",
                                        "out_of_bounds", *["scored"] * 4]  # fmt: skip
    assert table["score"][:5].isna().all()
    assert table["score"][5] == pytest.approx(table["score"][6], abs=1e-6)
    assert table["score"][7] == pytest.approx(table["score"][8], abs=1e-6)
    assert table["variant"][6] == table["variant"][5] and table["variant"][8] == table["variant"][7]
    assert (table["pos"][5:] == [5001, 5000, run, run + 2]).all()  # positions as the caller gave them, 1-based
