"""Every shipped config parses against the classes it names; every tiny one trains a few steps end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO

CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))
TINY = [c for c in CONFIGS if c.name.startswith("tiny")]  # tiny.yaml, tiny-codon.yaml


def _id(path: Path) -> str:
    return str(path.relative_to(REPO / "configs"))


def test_there_are_configs_for_every_family():
    assert {c.parent.name for c in TINY} >= {"hyena", "hybrid", "xlstm"}


@pytest.mark.parametrize("config", CONFIGS, ids=_id)
def test_config_parses(config, cli):
    out = cli("fit", "--config", config, "--print_config", cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "class_path" in out.stdout


@pytest.mark.parametrize("config", TINY, ids=_id)
def test_tiny_config_fast_dev_run(config, cli, tmp_path):
    out = cli(
        "fit",
        "--config",
        config,
        "--trainer.fast_dev_run",
        "2",
        "--trainer.default_root_dir",
        tmp_path,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "max_steps=2" in out.stderr
