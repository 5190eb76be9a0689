"""SequenceTaskModule: learns, starts from pre-trained weights, freezes, compiles, and its checkpoints serve
the supervised variant scorer; the fine-tuning configs run through the CLI."""

from __future__ import annotations

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from genolong.data.task_datamodule import SequenceTaskDataModule
from genolong.errors import InconsistentDataError, UsageError
from genolong.io.alleles import Variant
from genolong.models import GenoLongForCausalLM, get_preset
from genolong.pipelines.loading import load_model
from genolong.pipelines.variant_effect import VariantScorer
from genolong.tokenizers.factory import build_tokenizer, model_config_fields
from genolong.training.tasks import SequenceTaskModule
from tests.conftest import DATA, REPO, run_cli

SMALL = {"mixers": "hyena*2", "d_model": 32, "max_position": 128}


@pytest.fixture(scope="module")
def gc_table(tmp_path_factory):
    """120 sequences of 40 bases: GC-rich (label gc) or AT-rich (label at)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(120):
        rich = i % 2 == 0
        probs = [0.15, 0.35, 0.35, 0.15] if rich else [0.35, 0.15, 0.15, 0.35]
        rows.append(f"s{i}\t{''.join(rng.choice(list('ACGT'), 40, p=probs))}\t{'gc' if rich else 'at'}")
    path = tmp_path_factory.mktemp("gc") / "gc.tsv"
    path.write_text("id\tsequence\tlabel\n" + "\n".join(rows) + "\n")
    return path


def trainer(tmp_path, steps: int) -> L.Trainer:
    return L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip


def test_a_classifier_learns_gc_content_and_reports_its_metrics(gc_table, tmp_path):
    torch.manual_seed(0)
    module = SequenceTaskModule(model_overrides=SMALL, lr=3e-3, warmup_steps=5)
    data = SequenceTaskDataModule(train=gc_table, val_fraction=0.25, batch_size=16)
    run = trainer(tmp_path, 60)
    run.fit(module, data)
    metrics = run.validate(module, data, verbose=False)[0]
    assert data.classes == ["at", "gc"] and set(metrics) >= {"val/accuracy", "val/mcc", "val/auroc", "val/loss"}
    assert metrics["val/accuracy"] >= 0.9 and metrics["val/auroc"] >= 0.95


def test_backbone_from_a_pretrained_directory_and_a_frozen_backbone(gc_table, tmp_path):
    tokenizer = build_tokenizer("nucleotide")
    torch.manual_seed(1)
    lm = GenoLongForCausalLM(get_preset("tiny-hyena", **model_config_fields(tokenizer), **SMALL))
    lm.save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    module = SequenceTaskModule(pretrained=str(tmp_path / "lm"), freeze_backbone=True, lr=1e-2, warmup_steps=1)
    for (name, theirs), ours in zip(lm.model.state_dict().items(), module.model.model.state_dict().values(),
                                    strict=True):  # fmt: skip
        assert torch.equal(theirs, ours), name
    head = module.model.score.weight.detach().clone()
    trainer(tmp_path, 3).fit(module, SequenceTaskDataModule(train=gc_table, batch_size=8))
    for theirs, ours in zip(lm.model.parameters(), module.model.model.parameters(), strict=True):
        assert torch.equal(theirs, ours)  # frozen: untouched
    assert not torch.equal(head, module.model.score.weight)  # the head trained


def test_class_names_travel_with_the_checkpoint(gc_table, tmp_path):
    """The classes of the first fit name the outputs: id2label, export, test data in the model's order, and the
    supervised scorer's delta_<class> columns and target by name."""
    from transformers import AutoConfig

    from genolong.cli import export

    torch.manual_seed(0)
    run = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_progress_bar=False,
                    enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    run.fit(SequenceTaskModule(model_overrides=SMALL), SequenceTaskDataModule(train=gc_table, batch_size=8))
    ckpt = tmp_path / "classifier.ckpt"
    run.save_checkpoint(ckpt)
    # plain types only (the data module was given a pathlib.Path): loads with weights_only=True
    assert torch.load(ckpt, weights_only=True)["hyper_parameters"]["class_names"] == ["at", "gc"]
    model, _, _ = load_model(ckpt, "classification")
    assert model.config.id2label == {0: "at", 1: "gc"} and model.config.label2id == {"at": 0, "gc": 1}
    export(str(ckpt), str(tmp_path / "exported"))
    assert AutoConfig.from_pretrained(tmp_path / "exported").id2label == {0: "at", 1: "gc"}

    # a test file holding only "gc" rows: encoded as the model's class 1 (its own labels alone would give ["gc"])
    only_gc = tmp_path / "only_gc.tsv"
    lines = gc_table.read_text().splitlines()
    only_gc.write_text("\n".join([lines[0], *(line for line in lines[1:] if line.endswith("gc"))]) + "\n")
    data = SequenceTaskDataModule(test=only_gc, batch_size=8)
    metrics = run.test(SequenceTaskModule.load_from_checkpoint(ckpt), data, verbose=False)[0]
    assert data.classes == ["at", "gc"] and set(data.datasets["test"].targets) == {1} and "test/loss" in metrics
    reordered = SequenceTaskDataModule(test=gc_table, classes=["gc", "at"], batch_size=8)
    with pytest.raises(InconsistentDataError, match=r"classes \['at', 'gc'\] \(in that order\)"):
        run.test(SequenceTaskModule.load_from_checkpoint(ckpt), reordered, verbose=False)

    # a fit resumed in Python builds the module anew: the data's classes are checked against the checkpoint's
    resumed = L.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path)  # fmt: skip
    with pytest.raises(InconsistentDataError, match=r"checkpoint's outputs are the classes \['at', 'gc'\]"):
        resumed.fit(SequenceTaskModule(model_overrides=SMALL),
                    SequenceTaskDataModule(train=gc_table, classes=["gc", "at"], batch_size=8), ckpt_path=ckpt)
    with pytest.raises(UsageError, match="class_names has 3 names for num_labels=2"):
        SequenceTaskModule(model_overrides=SMALL, class_names=["a", "b", "c"])

    variant = Variant("MIIJ01000039.1", 5000, "A", "C")
    with VariantScorer.from_pretrained(ckpt, fasta=DATA / "ecoli_200k.fa", window=41, target="at") as scorer:
        variant = Variant(variant.contig, 5000, scorer.fasta.fetch(variant.contig, 5000, 5001).upper(), "A")
        table = scorer.score([variant], progress=False)
    assert {"delta_at", "delta_gc"} <= set(table.columns) and table["score"][0] == table["delta_at"][0]
    with pytest.raises(UsageError, match="outputs \\['at', 'gc'\\]"):
        VariantScorer.from_pretrained(ckpt, fasta=DATA / "ecoli_200k.fa", target="enhancer")


def test_compiled_training_step_runs(gc_table, tmp_path):
    module = SequenceTaskModule(model_overrides=SMALL, compile="aot_eager")
    trainer(tmp_path, 2).fit(module, SequenceTaskDataModule(train=gc_table, batch_size=8))
    assert module.trainer.global_step == 2 and list(module.state_dict())[0].startswith("model.")


def test_coverage_tracks_train_with_pearson_and_spearman(tmp_path):
    region = ["MIIJ01000039.1:1001-1400"]
    data = SequenceTaskDataModule(task="tracks", bam=str(DATA / "ecoli_200k.reads.bam"), fasta=str(DATA /
                                  "ecoli_200k.fa"), train_regions=region, val_regions=region, window=100)  # fmt: skip
    module = SequenceTaskModule(task="tracks", num_labels=1, model_overrides=SMALL)
    run = trainer(tmp_path, 2)
    run.fit(module, data)
    metrics = run.validate(module, data, verbose=False)[0]
    assert {"val/pearson", "val/spearman", "val/mse"} <= set(metrics) and np.isfinite(metrics["val/mse"])


def test_cli_fine_tunes_then_scores_variants_with_the_checkpoint(tmp_path):
    out = run_cli("fit", "--config", REPO / "configs/finetune/classification/tiny.yaml", "--trainer.max_steps", "4",
                  "--model.init_args.model_overrides", '{"mixers": "hyena*2", "d_model": 32}',
                  "--trainer.default_root_dir", tmp_path, "--checkpoint.dirpath", tmp_path / "ckpt",
                  "--trainer.enable_progress_bar", "false", cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    model, _, meta = load_model(tmp_path / "ckpt" / "last.ckpt", "classification")
    assert type(model).__name__ == "GenoLongForSequenceClassification" and meta["module"]["task"] == "classification"
    with VariantScorer.from_pretrained(tmp_path / "ckpt" / "last.ckpt", fasta=DATA / "ecoli_200k.fa",
                                       window=101) as scorer:  # fmt: skip
        assert scorer.method == "supervised"
        table = scorer.score([Variant("MIIJ01000039.1", 5000, scorer.fasta.fetch("MIIJ01000039.1", 5000, 5001)
                                      .upper(), "A")], progress=False)  # fmt: skip
    assert table["status"][0] == "scored" and np.isfinite(table["score"][0])
    mismatch = run_cli("fit", "--config", REPO / "configs/finetune/classification/tiny.yaml",
                       "--data.init_args.tokenizer", "kmer:3", "--trainer.fast_dev_run", "1", cwd=REPO)  # fmt: skip
    assert mismatch.returncode == 5 and "tokenized" in mismatch.stderr
    classes = run_cli("fit", "--config", REPO / "configs/finetune/classification/tiny.yaml",
                      "--model.init_args.num_labels", "3", "--trainer.fast_dev_run", "1", cwd=REPO)  # fmt: skip
    assert classes.returncode == 5 and "num_labels" in classes.stderr


def test_predict_writes_one_row_per_sequence_matching_the_model(tmp_path):
    from genolong.data.labelled import read_examples
    from genolong.io.fasta import Fasta

    config = REPO / "configs/finetune/classification/tiny.yaml"
    small = ["--model.init_args.model_overrides", '{"mixers": "hyena*2", "d_model": 32}']
    fitted = run_cli("fit", "--config", config, "--trainer.max_steps", "2", *small, "--trainer.default_root_dir",
                     tmp_path, "--checkpoint.dirpath", tmp_path / "ckpt", "--trainer.enable_progress_bar", "false",
                     cwd=REPO)  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr[-3000:]
    ckpt, bed = tmp_path / "ckpt" / "last.ckpt", DATA / "ecoli_200k.labels.bed"
    out = run_cli("predict", "--config", config, *small, "--ckpt_path", ckpt, "--data.init_args.test", bed,
                  "--trainer.default_root_dir", tmp_path / "predict", "--trainer.enable_progress_bar", "false",
                  cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    table = pd.read_csv(tmp_path / "predict" / "predictions.tsv", sep="\t")
    with Fasta(DATA / "ecoli_200k.fa") as fasta:
        examples = read_examples(bed, fasta)
    assert table["id"].tolist() == [e.id for e in examples]
    assert table["label"].tolist() == [str(e.target) for e in examples]
    classes = [c.removeprefix("p_") for c in table.columns if c.startswith("p_")]
    model, tokenizer, _ = load_model(ckpt, "classification")
    with torch.no_grad():
        for row in (0, len(examples) // 2, len(examples) - 1):
            ids = torch.as_tensor(np.asarray(tokenizer.encode(examples[row].sequence), dtype=np.int64))[None]
            expected = model(input_ids=ids).logits.softmax(-1)[0].numpy()
            assert np.allclose(table.loc[row, [f"p_{c}" for c in classes]].to_numpy(float), expected, atol=1e-5)
    language_model = run_cli("predict", "--config", REPO / "configs/hyena/tiny.yaml", cwd=REPO)
    assert language_model.returncode == 2 and "fine-tuned sequence models" in language_model.stderr
    text = tmp_path / "text.ckpt"
    text.write_text("hello\n")
    for subcommand in ("validate", "predict"):
        broken = run_cli(subcommand, "--config", config, "--ckpt_path", text, "--data.init_args.test", bed, cwd=REPO)
        assert broken.returncode == 4 and "the file is text" in broken.stderr and "Traceback" not in broken.stderr
