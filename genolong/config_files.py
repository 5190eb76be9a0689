"""``--config`` files checked before jsonargparse reads them, so that a missing file is missing input (exit 3) and
a YAML syntax error is malformed input naming the file and line (exit 4), not a usage dump."""

from __future__ import annotations

import os

from genolong.errors import InputMissingError, MalformedInputError


def check_config_files(args: list[str]) -> None:
    """Raise for the first ``--config FILE`` / ``--config=FILE`` in ``args`` that is missing or not YAML."""
    import yaml

    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            path = args[i + 1]
        elif arg.startswith("--config="):
            path = arg.partition("=")[2]
        else:
            continue
        if not os.path.exists(path):
            raise InputMissingError("no such config file", path=path)
        try:
            with open(path, encoding="utf-8") as fh:
                yaml.safe_load(fh)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise MalformedInputError(f"not valid YAML: {problem}", path=path,
                                      line=None if mark is None else mark.line + 1) from None  # fmt: skip
        except (OSError, UnicodeDecodeError) as error:
            raise InputMissingError(f"cannot read the config file ({error})", path=path) from None
