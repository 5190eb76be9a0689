"""Shared test fixtures: paths to the bundled data and a runner for the genolong CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# Without a GPU, Triton kernels run under the interpreter. It must be chosen before anything imports triton
# (torch's compiler stack does, through transformers), so it is set here, at collection.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
SHARED_DATA = REPO.parent / "shared" / "data"  # development genomes beside the checkout, not part of the package


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The development genomes in ../shared/data; tests that need them skip, saying so, where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the development genomes in {SHARED_DATA} (beside the checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ecoli_fasta() -> Path:
    """The bundled 200 kbp slice of the E. coli contig (real sequence)."""
    return DATA / "ecoli_200k.fa"


@pytest.fixture(scope="session")
def ecoli_gff() -> Path:
    """The CDS annotation of the bundled slice (GFF3, Prodigal calls)."""
    return DATA / "ecoli_200k.cds.gff3"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m genolong ARGS`` in a subprocess, as a user would; returns the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "genolong", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture
def cli():
    return run_cli
