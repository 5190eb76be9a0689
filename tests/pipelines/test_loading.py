"""load_model refuses broken models, and check_device/parse_dtype bad option values, with genolong errors."""

from __future__ import annotations

import pickle
import shutil

import pytest
import torch

from genolong.errors import InputMissingError, MalformedInputError, UnsafeCheckpointError, UsageError
from genolong.models import GenoLongForCausalLM
from genolong.pipelines.loading import check_device, load_model, parse_dtype
from genolong.tokenizers.factory import build_tokenizer, model_config_fields
from tests.conftest import DATA, REPO, run_cli
from tests.models.helpers import tiny_config

TOKENIZER = build_tokenizer("nucleotide")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = GenoLongForCausalLM(tiny_config("hyena*2", **model_config_fields(TOKENIZER))).eval()
    out = tmp_path_factory.mktemp("model")
    model.save_pretrained(out)
    TOKENIZER.save_pretrained(out)
    return out


def _without_weights(folder):
    (folder / "model.safetensors").unlink()


def _invalid_config(folder):
    (folder / "config.json").write_text("{oops")


def _truncated_weights(folder):
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])


def _another_model_type(folder):
    config = folder / "config.json"
    config.write_text(config.read_text().replace('"model_type": "genolong"', '"model_type": "bert"'))


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [(_without_weights, InputMissingError, "no model.safetensors"),
     (_invalid_config, MalformedInputError, "config.json:1: invalid JSON"),
     (_truncated_weights, MalformedInputError, "cannot load the model"),
     (_another_model_type, MalformedInputError, "model_type 'bert'")],
)  # fmt: skip
def test_broken_pretrained_directories_are_refused(model_dir, tmp_path, damage, error, message):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    assert load_model(broken, None)[0].config.model_type == "genolong"  # intact before the damage
    damage(broken)
    with pytest.raises(error, match=message):
        load_model(broken, None)


NOT_CHECKPOINTS = {
    "hello": (b"hello\n", "the file is text"),
    "lfs": (b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 9\n", "Git LFS pointer"),
    "html": (b"<!DOCTYPE html><html><body>Not found</body></html>\n", "web page"),
    "empty": (b"", "the file is empty"),
    "raw_pickle": (pickle.dumps({"state_dict": {}}, protocol=2), "not a readable checkpoint"),
    "garbled_pickle": (b"\x80\x02" + bytes(range(200, 256)), "corrupt pickle data"),
}


@pytest.mark.parametrize("name", sorted(NOT_CHECKPOINTS))
def test_files_that_are_not_checkpoints_are_malformed_not_unsafe(tmp_path, name):
    content, message = NOT_CHECKPOINTS[name]
    path = tmp_path / f"{name}.ckpt"
    path.write_bytes(content)
    with pytest.raises(MalformedInputError, match=message) as raised:
        load_model(path, None)
    assert str(path) in str(raised.value) and "weights_only" not in str(raised.value)


def test_checkpoints_that_are_not_dicts_are_malformed(tmp_path):
    path = tmp_path / "list.ckpt"
    torch.save([1, 2, 3], path)
    with pytest.raises(MalformedInputError, match="holds a list, not a dict"):
        load_model(path, None)


class NotPlainData:
    """A class a checkpoint can only refer to as code."""


def test_checkpoints_that_refer_to_code_stay_refused_as_unsafe(tmp_path):
    path = tmp_path / "code.ckpt"
    torch.save({"hyper_parameters": NotPlainData()}, path)
    with pytest.raises(UnsafeCheckpointError, match="refers to code .*NotPlainData") as raised:
        load_model(path, None)
    assert "weights_only" not in str(raised.value)  # no advice to unpickle it anyway


def test_device_and_dtype_values_are_checked():
    assert check_device("cpu") == "cpu"
    for device in ("gpu", "cuda:99", "meta"):
        with pytest.raises(UsageError, match="--device"):
            check_device(device)
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA GPU"):
            check_device("cuda")
    assert parse_dtype("fp16") is torch.float16 and parse_dtype("bfloat16") is torch.bfloat16
    assert parse_dtype(None) is None
    with pytest.raises(UsageError, match="--dtype 'float8'"):
        parse_dtype("float8")


def test_cli_exit_codes_for_bad_device_and_non_checkpoint(model_dir, tmp_path):
    common = ["embed", "--fasta", DATA / "ecoli_200k.fa", "--output", tmp_path / "e.npy"]
    gpu = run_cli(*common, "--model", model_dir, "--device", "gpu", cwd=REPO)
    assert gpu.returncode == 2 and "Traceback" not in gpu.stderr and "cpu, cuda" in gpu.stderr
    pointer = tmp_path / "model.ckpt"
    pointer.write_bytes(NOT_CHECKPOINTS["lfs"][0])
    lfs = run_cli(*common, "--model", pointer, cwd=REPO)
    assert lfs.returncode == 4 and "Git LFS pointer" in lfs.stderr and "Traceback" not in lfs.stderr
    assert not (tmp_path / "e.npy").exists()
