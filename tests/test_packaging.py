"""The package installs as `genolong` only, and never shadows Hugging Face `tokenizers`."""

from __future__ import annotations

import subprocess
import sys

from genolong.errors import GenoLongError, MalformedInputError


def test_import_tokenizers_is_hugging_face(tmp_path):
    # Run from the repo root, where a top-level `tokenizers/` folder would win over site-packages.
    code = "import tokenizers, sys; print(tokenizers.__file__); assert hasattr(tokenizers, 'Tokenizer')"
    from tests.conftest import REPO

    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "site-packages" in out.stdout


def test_only_genolong_packages_are_found():
    from setuptools import find_packages

    from tests.conftest import REPO

    found = find_packages(str(REPO), include=["genolong*"])
    assert found and all(p == "genolong" or p.startswith("genolong.") for p in found)
    everything = find_packages(str(REPO))
    assert "tokenizers" not in everything and "models" not in everything


def test_import_genolong_is_light():
    # `import genolong` must work on a CPU machine without pulling Triton or Lightning in.
    code = "import sys, genolong; print(' '.join(m for m in ('triton', 'lightning') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_every_public_name_resolves():
    """Each lazily re-exported name of `genolong` exists in the module it is loaded from."""
    import genolong

    for name in genolong.__all__:
        assert getattr(genolong, name) is not None, name


def test_error_message_names_file_and_line_on_one_line():
    err = MalformedInputError("bad\nthing", path="x.fa", line=3, hint="fix it")
    assert str(err) == "x.fa:3: bad thing (fix it)"
    assert err.exit_code == 4
    assert isinstance(err, GenoLongError)


def test_cli_help_lists_commands(cli):
    out = cli("--help")
    assert out.returncode == 0
    assert "inspect" in out.stdout


def test_cli_unknown_kind_is_usage_error(cli, tmp_path):
    path = tmp_path / "thing.xyz"
    path.write_text("hello\n")
    out = cli("inspect", path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "thing.xyz" in out.stderr and "Traceback" not in out.stderr


def test_cli_missing_file_exits_3(cli, tmp_path):
    out = cli("inspect", tmp_path / "absent.fa")
    assert out.returncode == 3
    assert "absent.fa" in out.stderr and "Traceback" not in out.stderr
