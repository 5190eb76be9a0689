"""fit -> export -> evaluate through the command line, and the errors a user meets on the way."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO

TINY = REPO / "configs" / "hyena" / "tiny.yaml"
QUICK = [
    "--model.init_args.model_overrides", '{"mixers": "hyena*2", "d_model": 32}',
    "--trainer.max_steps", "3", "--data.init_args.tokens_per_step", "1024",
    "--data.init_args.val_regions", '["MIIJ01000039.1:199001-200000"]', "--trainer.enable_progress_bar", "false",
]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny causal model trained for 3 steps on the bundled genome (barely better than chance), exported."""
    from tests.conftest import run_cli

    root = tmp_path_factory.mktemp("run")
    out = run_cli("fit", "--config", TINY, *QUICK, "--trainer.default_root_dir", root,
                  "--checkpoint.dirpath", root / "ckpt", cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = root / "ckpt" / "last.ckpt"
    assert ckpt.exists()
    exported = run_cli("export", ckpt, root / "model", cwd=REPO)
    assert exported.returncode == 0, exported.stderr[-2000:]
    return ckpt, root / "model"


def test_exported_model_loads_through_transformers(trained):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import genolong  # noqa: F401  (registers the classes)

    _, model_dir = trained
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = torch.as_tensor(tokenizer.encode("ACGTACGTAC"), dtype=torch.long)[None]
    assert model(input_ids=ids).logits.shape == (1, 10, len(tokenizer))


def test_export_replaces_an_earlier_export_but_never_mixes_with_other_files(trained, cli, tmp_path):
    ckpt, model_dir = trained
    again = cli("export", ckpt, model_dir, cwd=REPO)  # over the fixture's export
    assert again.returncode == 0, again.stderr[-2000:]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    (tmp_path / "file").write_text("a file")
    for target in ("notes", "file"):
        refused = cli("export", ckpt, tmp_path / target, cwd=REPO)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["keep.txt"]


def test_resuming_from_a_truncated_checkpoint_is_malformed_input(trained, cli, tmp_path):
    ckpt, _ = trained
    truncated = tmp_path / "cut.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[:20000])
    out = cli("fit", "--config", TINY, *QUICK, "--trainer.default_root_dir", tmp_path, "--ckpt_path", truncated,
              cwd=REPO)  # fmt: skip
    assert out.returncode == 4 and "cut.ckpt" in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]


def test_resuming_says_which_given_model_settings_the_checkpoint_replaces(trained, cli, tmp_path):
    ckpt, _ = trained
    out = cli("fit", "--config", TINY, *QUICK, "--trainer.max_steps", "4", "--model.init_args.lr", "0.001",
              "--trainer.default_root_dir", tmp_path, "--checkpoint.dirpath", tmp_path / "ckpt",
              "--ckpt_path", ckpt, cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "model settings replace the ones given for lr" in out.stderr


@pytest.mark.parametrize("source", ["checkpoint", "exported"])
def test_evaluate_reports_model_and_markov(trained, source, cli, tmp_path):
    model = trained[0] if source == "checkpoint" else trained[1]
    result_file = tmp_path / "eval.json"
    out = cli("evaluate", "--model", model, "--fasta", REPO / "data" / "ecoli_200k.fa",
              "--regions", "MIIJ01000039.1:190001-192000", "--train_regions", "MIIJ01000039.1:1-100000",
              "--length", "256", "--output", result_file, cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(result_file.read_text())
    assert result["bases_scored"] == 1999  # every base but the first of the region
    assert 1.0 < result["bits_per_base"] < 5.0 and 1.5 < result["markov_bits_per_base"] < 2.1
    assert set(result["markov_by_order"]) == {str(k) for k in range(11)}


def test_an_export_keeps_the_training_defaults_of_its_checkpoint(trained, cli, tmp_path):
    """Held-out regions and the baseline's training regions come from the training run, for both sources."""
    results = []
    for model in trained:
        out = cli("evaluate", "--model", model, "--fasta", REPO / "data" / "ecoli_200k.fa", "--length", "256",
                  "--output", tmp_path / "eval.json", cwd=REPO)  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        results.append(json.loads((tmp_path / "eval.json").read_text()))
    from_checkpoint, from_export = ({k: v for k, v in r.items() if k != "model"} for r in results)
    assert from_export == from_checkpoint
    assert from_export["regions"] == ["MIIJ01000039.1:199001-200000"]


def test_a_dotted_override_changes_one_field_of_model_overrides(cli):
    """As the README advises for activation checkpointing: the config's other model fields stay."""
    out = cli("fit", "--config", TINY, "--model.init_args.model_overrides.gradient_checkpointing", "true",
              "--print_config", cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    import yaml

    overrides = yaml.safe_load(out.stdout)["model"]["init_args"]["model_overrides"]
    configured = yaml.safe_load(TINY.read_text())["model"]["init_args"]["model_overrides"]
    assert overrides == configured | {"gradient_checkpointing": True}


@pytest.mark.parametrize("command", ["fit", "evaluate"])
def test_a_missing_config_file_is_missing_input_and_bad_yaml_is_malformed(cli, tmp_path, command):
    for args in (["--config", str(tmp_path / "nope.yaml")], [f"--config={tmp_path / 'nope.yaml'}"]):
        out = cli(command, *args, cwd=REPO)
        assert out.returncode == 3 and "nope.yaml" in out.stderr and "Traceback" not in out.stderr, out.stderr
    (tmp_path / "bad.yaml").write_text("trainer:\n  max_steps: 3\nmodel: [unclosed\n")
    out = cli(command, "--config", tmp_path / "bad.yaml", cwd=REPO)
    assert out.returncode == 4 and "bad.yaml:4: not valid YAML" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_bad_preset_is_a_usage_error_not_a_traceback(cli):
    out = cli(
        "fit", "--config", TINY, "--model.init_args.preset", "nope", "--trainer.fast_dev_run", "1", cwd=REPO
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "nope" in out.stderr


def test_mismatched_tokenizers_are_inconsistent_data(cli, tmp_path):
    out = cli("fit", "--config", TINY, *QUICK, "--data.init_args.tokenizer", "kmer:2",
              "--trainer.default_root_dir", tmp_path, cwd=REPO)  # fmt: skip
    assert out.returncode == 5, out.stderr[-2000:]
    assert "Traceback" not in out.stderr


def test_evaluate_refuses_an_unwritable_output_before_working(trained, cli, tmp_path):
    out = cli("evaluate", "--model", trained[0], "--fasta", REPO / "data" / "ecoli_200k.fa",
              "--output", tmp_path / "missing" / "eval.json", cwd=REPO)  # fmt: skip
    assert out.returncode == 2 and "eval.json" in out.stderr


def test_bf16_mixed_with_activation_checkpointing_trains(cli, tmp_path):
    overrides = '{"mixers": "hyena*2", "d_model": 32, "gradient_checkpointing": true}'
    out = cli("fit", "--config", TINY, *QUICK, "--trainer.precision", "bf16-mixed",
              "--model.init_args.model_overrides", overrides,
              "--trainer.log_every_n_steps", "1", "--trainer.default_root_dir", tmp_path, cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    rows = csv.DictReader(next(tmp_path.rglob("metrics.csv")).open())
    losses = [float(row["train/loss"]) for row in rows if row.get("train/loss")]
    assert len(losses) == 3 and all(0 < loss < 10 for loss in losses)


def test_a_codon_model_trains_and_is_evaluated_on_the_annotated_frames(cli, tmp_path):
    gff = "data/ecoli_200k.cds.gff3"  # relative to the repository, where fit runs
    out = cli("fit", "--config", TINY, *QUICK, "--model.init_args.tokenizer", "codon",
              "--data.init_args.tokenizer", "codon", "--data.init_args.annotation", gff,
              "--trainer.log_every_n_steps", "1", "--trainer.default_root_dir", tmp_path,
              "--checkpoint.dirpath", tmp_path / "ckpt", cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "184 CDS give the codon frames" in out.stderr
    rows = [row for row in csv.DictReader(next(tmp_path.rglob("metrics.csv")).open()) if row.get("train/loss")]
    # a near-untrained model over 149 tokens pays ~5 nats a token; codons put ~2.4 tokens in 3 bases
    assert len(rows) == 3
    assert all(float(row["train/loss"]) > 4 for row in rows)
    assert all(2.0 < float(row["train/bits_per_base"]) < 4.0 for row in rows)

    # evaluate reads the frames of the annotation the model was trained with
    evaluated = cli("evaluate", "--model", tmp_path / "ckpt" / "last.ckpt", "--fasta", REPO / "data" / "ecoli_200k.fa",
                    "--regions", "MIIJ01000039.1:190001-192000", "--train_regions", "MIIJ01000039.1:1-100000",
                    "--length", "256", "--output", tmp_path / "eval.json", cwd=REPO)  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["tokenizer"] == "CodonTokenizer" and 1990 <= result["bases_scored"] <= 1999
    assert 2.0 < result["bits_per_base"] < 4.0
    by_default = cli("evaluate", "--model", tmp_path / "ckpt" / "last.ckpt", "--fasta",
                     REPO / "data" / "ecoli_200k.fa", "--regions", "MIIJ01000039.1:190001-192000",
                     "--output", tmp_path / "eval2.json", cwd=REPO)  # fmt: skip
    assert by_default.returncode == 0, by_default.stderr[-2000:]
    # windows of about the 1024 training bases: fewer tokens than bases in codons
    assert 1024 // 3 < json.loads((tmp_path / "eval2.json").read_text())["window_length"] < 1024
    elsewhere = cli("evaluate", "--model", tmp_path / "ckpt" / "last.ckpt", "--fasta", REPO / "data" / "ecoli_200k.fa",
                    "--regions", "MIIJ01000039.1:190001-192000", cwd=tmp_path)  # fmt: skip
    assert elsewhere.returncode == 3 and "annotation the model was trained with" in elsewhere.stderr
    assert "--annotation" in elsewhere.stderr

    # variant scoring reads the same frames (the training annotation by default)
    scored = cli("score-variants", "--model", tmp_path / "ckpt" / "last.ckpt", "--fasta",
                 REPO / "data" / "ecoli_200k.fa", "--vcf", REPO / "data" / "ecoli_200k.variants.vcf.gz",
                 "--output", tmp_path / "scores.tsv", "--window", "101", cwd=REPO)  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-2000:]
    table = pd.read_csv(tmp_path / "scores.tsv", sep="\t")
    scored_rows = table["status"] == "scored"
    assert scored_rows.sum() >= 10 and np.isfinite(table.loc[scored_rows, "score"]).all()


def test_an_annotation_with_a_single_base_tokenizer_is_a_usage_error(cli, tmp_path):
    out = cli("fit", "--config", TINY, *QUICK, "--data.init_args.annotation", REPO / "data" / "ecoli_200k.cds.gff3",
              "--trainer.default_root_dir", tmp_path, cwd=REPO)  # fmt: skip
    assert out.returncode == 2 and "does not use one" in out.stderr and "Traceback" not in out.stderr


def test_batches_with_no_base_to_score_are_counted_not_logged_as_a_loss_of_zero(cli, tmp_path):
    from genolong.io.fasta import Fasta

    real = Fasta(REPO / "data" / "ecoli_200k.fa").fetch("MIIJ01000039.1", 0, 3000)
    fasta = tmp_path / "gap.fa"
    fasta.write_text(f">gap\n{'N' * 3000}\n>real\n{real}\n")
    out = cli("fit", "--config", TINY, *QUICK, "--data.init_args.fasta", fasta,
              "--data.init_args.max_n_fraction", "1.0", "--data.init_args.train_regions", '["gap"]',
              "--data.init_args.val_regions", '["real"]',
              "--trainer.log_every_n_steps", "1", "--trainer.default_root_dir", tmp_path, cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    rows = list(csv.DictReader(next(tmp_path.rglob("metrics.csv")).open()))
    assert [float(row["train/unscored_batches"]) for row in rows if row.get("train/unscored_batches")] == [1.0] * 3
    assert not any(row.get("train/loss") for row in rows)


def test_validate_without_a_checkpoint_says_the_weights_are_new(cli, tmp_path):
    out = cli("validate", "--config", TINY, *QUICK, "--trainer.limit_val_batches", "1",
              "--trainer.default_root_dir", tmp_path, cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "validate without --ckpt_path runs the model as the config builds it" in out.stderr
