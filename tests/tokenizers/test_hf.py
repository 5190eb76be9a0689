"""Hugging Face integration: __call__, batch_encode, save/load, AutoTokenizer offline, vocab checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from genolong.errors import InconsistentDataError
from genolong.tokenizers import CodonTokenizer, KmerTokenizer, NucleotideTokenizer
from tests.conftest import REPO

TOKENIZERS = [NucleotideTokenizer(), KmerTokenizer(3), KmerTokenizer(4, 1, iupac="keep"), CodonTokenizer()]


def test_call_pads_and_returns_torch_tensors():
    tok = NucleotideTokenizer()
    out = tok(["ACGT", "AC"], padding=True, return_tensors="pt")
    assert out["input_ids"].tolist() == [[5, 6, 7, 8], [5, 6, 0, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert out["input_ids"].dtype == torch.long and set(out) == {"input_ids", "attention_mask"}
    single = tok("ACGT", return_tensors="np")
    assert single["input_ids"].tolist() == [[5, 6, 7, 8]]


def test_call_truncates_pads_left_and_adds_special_tokens():
    tok = NucleotideTokenizer(special_tokens_pattern="bos_eos", padding_side="left")
    out = tok(["ACGTACGT", "A"], padding="max_length", truncation=True, max_length=5, return_tensors="pt")
    assert out["input_ids"].tolist() == [[2, 5, 6, 7, 3], [0, 0, 2, 5, 3]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]
    assert tok.encode("AC", padding="max_length", max_length=6) == [0, 0, 2, 5, 6, 3]


@pytest.mark.parametrize("tok", TOKENIZERS, ids=lambda t: f"{type(t).__name__}")
def test_batch_encode_matches_call(tok):
    seqs = ["ACGTACGTAA", "ACG", "", "NNACGTTGCA"]
    fast = tok.batch_encode(seqs, return_tensors="pt")
    slow = tok(seqs, padding=True, return_tensors="pt")
    assert torch.equal(fast["input_ids"], slow["input_ids"])
    assert torch.equal(fast["attention_mask"], slow["attention_mask"])
    assert tok.decode(fast["input_ids"], skip_special_tokens=True) == seqs


def test_batch_encode_options():
    tok = NucleotideTokenizer()
    out = tok.batch_encode(
        ["ACGTA", "AC"], padding="max_length", max_length=4, truncation=True, pad_to_multiple_of=8
    )
    assert out["input_ids"].shape == (2, 8) and isinstance(out["input_ids"], np.ndarray)
    assert out["attention_mask"].sum(1).tolist() == [4, 2]
    assert tok.batch_encode(["AC", "G"], padding=False, return_tensors=None)["input_ids"] == [[5, 6], [7]]
    assert tok.batch_encode(["acgu"], rna=True)["input_ids"].tolist() == [[5, 6, 7, 8]]


def test_codon_options_per_sequence_in_batches():
    tok = CodonTokenizer()
    seqs, cds = ["ATGAAA", "ATGAAA"], [[(0, 6, "+", 0)], None]
    out = tok(seqs, cds=cds, padding=True)
    fast = tok.batch_encode(seqs, cds=cds, return_tensors=None)
    assert (
        out["input_ids"] == fast["input_ids"] == [[25, 11, 0, 0, 0, 0], [5, 8, 7, 5, 5, 5]]
    )  # ATG = 11 + 0*16 + 3*4 + 2


def test_hf_tokenize_and_convert_paths_agree():
    tok = KmerTokenizer(3, 1)
    text = "ACGT[MASK]GGAN"
    assert tok.convert_tokens_to_ids(tok.tokenize(text)) == tok.encode(text).tolist()
    assert tok.convert_tokens_to_string(tok.tokenize(text)) == text


@pytest.mark.parametrize("tok", TOKENIZERS, ids=lambda t: f"{type(t).__name__}")
def test_save_and_load_round_trip(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "vocab.json").exists() and (tmp_path / "tokenizer_config.json").exists()
    for loaded in (type(tok).from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path)):
        assert type(loaded) is type(tok)
        assert loaded.get_vocab() == tok.get_vocab()
        assert loaded.init_kwargs["soft_mask"] == tok.soft_mask and loaded.iupac == tok.iupac
        assert loaded.encode("ACGTNACGT").tolist() == tok.encode("ACGTNACGT").tolist()


def test_vocab_mismatch_on_load_is_inconsistent_data(tmp_path):
    KmerTokenizer(3).save_pretrained(tmp_path)
    config_path = tmp_path / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["k"] = config["stride"] = 4
    config_path.write_text(json.dumps(config))
    with pytest.raises(InconsistentDataError, match="vocab.json") as info:
        AutoTokenizer.from_pretrained(tmp_path)
    assert info.value.exit_code == 5


def test_auto_tokenizer_in_a_fresh_offline_process(tmp_path):
    for name, tok in [
        ("nuc", NucleotideTokenizer(iupac="keep")),
        ("kmer", KmerTokenizer(4, 2)),
        ("codon", CodonTokenizer()),
    ]:
        tok.save_pretrained(tmp_path / name)
    code = (
        "import sys\n"
        "from genolong.tokenizers import register_auto_classes\n"
        "register_auto_classes()\n"
        "from transformers import AutoTokenizer\n"
        "for name in ('nuc', 'kmer', 'codon'):\n"
        "    tok = AutoTokenizer.from_pretrained(sys.argv[1] + '/' + name)\n"
        "    out = tok(['ACGT', 'AC'], padding=True, return_tensors='pt')\n"
        "    print(type(tok).__name__, out['input_ids'].shape[1])\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["NucleotideTokenizer", "4", "KmerTokenizer", "3", "CodonTokenizer", "4"]


def test_decode_accepts_tensors_arrays_and_batches():
    tok = NucleotideTokenizer()
    ids = torch.tensor([[5, 6, 0], [7, 8, 9]])
    assert tok.decode(ids, skip_special_tokens=True) == ["AC", "GTN"]
    assert tok.batch_decode(ids.numpy(), skip_special_tokens=True) == ["AC", "GTN"]
    assert tok.decode(np.array([5, 6], dtype=np.uint8)) == "AC"
    assert tok.decode(7) == "G"


def test_pickle_copy_and_fixed_vocabulary():
    import copy
    import pickle

    from genolong.tokenizers import TokenizerUsageError

    for tok in TOKENIZERS:
        for clone in (pickle.loads(pickle.dumps(tok)), copy.deepcopy(tok)):  # DataLoader workers pickle it
            assert clone.encode("ACGTNACGTA").tolist() == tok.encode("ACGTNACGTA").tolist()
        with pytest.raises(TokenizerUsageError, match="fixed vocabulary"):
            tok.add_tokens(["XYZ"])


def test_tokenize_takes_the_encode_options():
    codon, nucleotide = CodonTokenizer(), NucleotideTokenizer()
    text, cds = "CCATGAAATAGCC", [(2, 11, "+", 0)]
    assert codon.tokenize(text, cds=cds) == ["C", "C", "ATG", "AAA", "TAG", "C", "C"]
    assert codon.convert_tokens_to_ids(codon.tokenize(text, cds=cds)) == codon.encode(text, cds=cds).tolist()
    assert nucleotide.tokenize("ACGU", rna=True) == ["A", "C", "G", "T"]
    with pytest.raises(ValueError, match="unknown option"):
        codon.tokenize(text, cds=cds, frame=1)
