"""Supervised VEP: a classifier on frozen embeddings learns a label the windows carry, not one they do not."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from genolong.io.alleles import Variant
from genolong.io.fasta import Fasta
from genolong.models import GenoLongForCausalLM
from genolong.pipelines.supervised_vep import SupervisedVEP, variant_features
from genolong.tokenizers.factory import build_tokenizer, model_config_fields
from tests.conftest import DATA, REPO, run_cli
from tests.models.helpers import tiny_config

FASTA = DATA / "ecoli_200k.fa"
CONTIG = "MIIJ01000039.1"
TOKENIZER = build_tokenizer("nucleotide")
WINDOW = 33


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GenoLongForCausalLM(tiny_config("hyena*2", **model_config_fields(TOKENIZER), max_position=64)).eval()


@pytest.fixture(scope="module")
def snvs():
    """160 SNVs at random positions, each to a random other base; label 1 when the new base is G or C."""
    rng = np.random.default_rng(0)
    with Fasta(FASTA) as fasta:
        positions = sorted(rng.choice(np.arange(1000, 199_000), 160, replace=False).tolist())
        variants = []
        for pos in positions:
            ref = fasta.fetch(CONTIG, pos, pos + 1).upper()
            alt = rng.choice([b for b in "ACGT" if b != ref])
            variants.append(Variant(CONTIG, pos, ref, str(alt)))
    return variants, np.array([v.alt in "GC" for v in variants], dtype=np.int64)


def test_features_are_strand_averaged_ref_and_difference(model, snvs):
    variants, _ = snvs
    with Fasta(FASTA) as fasta:
        x = variant_features(model, TOKENIZER, fasta, variants[:3], window=WINDOW)
    assert x.shape == (3, 2 * model.config.d_model) and np.isfinite(x).all()
    assert np.abs(x[:, model.config.d_model :]).max() > 0  # the alt window differs from the ref window


def test_a_label_the_windows_carry_is_learned_and_random_labels_are_not(model, snvs):
    variants, labels = snvs
    vep = SupervisedVEP.fit(model, TOKENIZER, FASTA, variants, labels, window=WINDOW, folds=4)
    assert vep.cv_auroc > 0.85 and len(vep.fold_aurocs) == 4
    assert vep.cv_auroc == pytest.approx(roc_auc_score(labels, vep.cv_predictions))
    shuffled = np.random.default_rng(1).permutation(labels)
    chance = SupervisedVEP.fit(model, TOKENIZER, FASTA, variants, shuffled, window=WINDOW, folds=4)
    assert 0.25 < chance.cv_auroc < 0.75
    probabilities = vep.predict_proba(model, TOKENIZER, FASTA, variants[:10])
    assert probabilities.shape == (10,) and ((probabilities >= 0) & (probabilities <= 1)).all()


def test_cli_fit_vep_writes_predictions_metrics_and_classifier(model, snvs, tmp_path):
    variants, labels = snvs
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    TOKENIZER.save_pretrained(model_dir)
    vcf = tmp_path / "labelled.vcf"
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID={CONTIG},length=200000>",
             '##INFO=<ID=GC_GAIN,Number=0,Type=Flag,Description="alt is G or C">',
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]  # fmt: skip
    lines += [f"{CONTIG}\t{v.pos + 1}\tv{i}\t{v.ref}\t{v.alt}\t.\tPASS\t{'GC_GAIN' if y else '.'}"
              for i, (v, y) in enumerate(zip(variants, labels, strict=True))]  # fmt: skip
    vcf.write_text("\n".join(lines) + "\n")
    common = ["fit-vep", "--model", model_dir, "--fasta", FASTA, "--vcf", vcf, "--window", str(WINDOW)]
    ok = run_cli(*common, "--label_field", "GC_GAIN", "--output_dir", tmp_path / "vep", "--folds", "4", cwd=REPO)
    assert ok.returncode == 0, ok.stderr[-3000:]
    metrics = json.loads((tmp_path / "vep" / "metrics.json").read_text())
    table = pd.read_csv(tmp_path / "vep" / "cv_predictions.tsv", sep="\t")
    assert metrics["variants"] == len(table) == 160 and table["label"].tolist() == labels.tolist()
    assert metrics["cv_auroc"] == pytest.approx(roc_auc_score(table["label"], table["cv_probability"]), abs=1e-4)
    assert metrics["cv_auroc"] > 0.85 and (tmp_path / "vep" / "classifier.joblib").stat().st_size > 0
    missing = run_cli(*common, "--label_field", "NOPE", "--output_dir", tmp_path / "x", cwd=REPO)
    assert missing.returncode == 5 and "NOPE" in missing.stderr and "Traceback" not in missing.stderr
    assert table["pos"].tolist() == [v.pos + 1 for v in variants] and table["record"].tolist() == list(range(1, 161))
    assert "skipped:\n  (none)" in ok.stdout
    (tmp_path / "a_file").write_text("")
    for bad in (["--output_dir", tmp_path / "a_file"], ["--output_dir", tmp_path / "y", "--folds", "1"]):
        refused = run_cli(*common, "--label_field", "GC_GAIN", *bad, cwd=REPO)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
        assert "existing file" in refused.stderr or "at least 2 folds" in refused.stderr
