"""NucleotideTokenizer: fixed ids, policies, errors, round trips and reverse complement in token space."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from genolong.errors import GenoLongError, MalformedInputError
from genolong.tokenizers import (
    InvalidSequenceError,
    NucleotideTokenizer,
    TokenizerUsageError,
    reverse_complement,
)
from genolong.tokenizers.alphabet import COMPLEMENT
from tests.tokenizers.strategies import ANY_CASE_IUPAC, IUPAC_UPPER, PROPERTY, dna

FIXED = {"[PAD]": 0, "[UNK]": 1, "[BOS]": 2, "[EOS]": 3, "[MASK]": 4, "A": 5, "C": 6, "G": 7, "T": 8, "N": 9}


def test_vocabulary_is_fixed():
    assert NucleotideTokenizer().get_vocab() == FIXED
    keep = NucleotideTokenizer(iupac="keep").get_vocab()
    assert {t: keep[t] for t in FIXED} == FIXED
    assert [keep[c] for c in "RYSWKMBDHV"] == list(range(10, 20))
    tok = NucleotideTokenizer()
    assert (tok.pad_token_id, tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.mask_token_id) == (
        0,
        1,
        2,
        3,
        4,
    )


def test_encode_returns_writable_uint8_array():
    ids = NucleotideTokenizer().encode("ACGTN")
    assert ids.dtype == np.uint8 and ids.flags.writeable
    assert ids.tolist() == [5, 6, 7, 8, 9]
    assert NucleotideTokenizer().encode("ACGT", dtype=np.int64).dtype == np.int64
    assert NucleotideTokenizer().encode(b"ACGT").tolist() == [5, 6, 7, 8]
    assert NucleotideTokenizer().encode("").shape == (0,)


def test_soft_mask_fold_returns_mask_and_decode_restores_case():
    tok = NucleotideTokenizer()
    ids, mask = tok.encode("ACgtNn", return_soft_mask=True)
    assert ids.tolist() == [5, 6, 7, 8, 9, 9]
    assert mask.tolist() == [False, False, True, True, False, True]
    assert tok.decode(ids) == "ACGTNN"
    assert tok.decode(ids, soft_mask=mask) == "ACgtNn"


def test_soft_mask_error_policy_names_position():
    with pytest.raises(InvalidSequenceError, match=r"'g' at position 2: soft-masked"):
        NucleotideTokenizer(soft_mask="error").encode("ACgt")


def test_iupac_policies():
    assert NucleotideTokenizer(iupac="to_n").encode("ARYN").tolist() == [5, 9, 9, 9]
    assert NucleotideTokenizer(iupac="keep").encode("ARYNv").tolist() == [5, 10, 11, 9, 19]
    with pytest.raises(InvalidSequenceError, match=r"'R' at position 1: IUPAC ambiguity"):
        NucleotideTokenizer(iupac="error").encode("ARN")
    assert NucleotideTokenizer(iupac="error").encode("AN").tolist() == [5, 9]


def test_rna_only_when_asked():
    tok = NucleotideTokenizer()
    with pytest.raises(InvalidSequenceError, match=r"'U' at position 3: .*rna=True"):
        tok.encode("ACGU")
    ids = tok.encode("ACGUu", rna=True)
    assert ids.tolist() == [5, 6, 7, 8, 8]
    assert tok.decode(ids, rna=True) == "ACGUU"
    rna_tok = NucleotideTokenizer(rna=True)
    assert rna_tok.decode(rna_tok.encode("GAUC")) == "GAUC"


@pytest.mark.parametrize(
    "seq, pos, char, words",
    [
        ("ACGTMEEKLV", 5, "E", "protein"),
        ("ACG7T", 3, "7", "not an IUPAC"),
        ("AC-GT", 2, "-", "gap"),
        ("AC\nGT", 2, "\n", "whitespace"),
        ("ACGé", 3, "é", "not an IUPAC"),
        ("AC[FOO]", 2, "[", "special tokens"),
    ],
)
def test_invalid_characters_are_errors_naming_position_and_character(seq, pos, char, words):
    with pytest.raises(InvalidSequenceError) as info:
        NucleotideTokenizer().encode(seq)
    err = info.value
    assert (err.position, err.char) == (pos, char)
    assert f"position {pos}" in str(err) and repr(char) in str(err) and words in str(err)
    assert isinstance(err, MalformedInputError) and isinstance(err, ValueError) and err.exit_code == 4
    assert "\n" not in str(err)


def test_error_position_is_global_across_chunks_and_special_tokens():
    with pytest.raises(InvalidSequenceError, match="position 300001"):
        NucleotideTokenizer().encode("A" * 300_001 + "E")
    with pytest.raises(InvalidSequenceError, match="position 8"):
        NucleotideTokenizer().encode("AC[MASK]EG")


def test_special_tokens_written_in_text():
    tok = NucleotideTokenizer()
    assert tok.encode("AC[MASK]G[PAD]").tolist() == [5, 6, 4, 7, 0]
    ids, starts = tok.encode_with_positions("AC[MASK]G")
    assert starts.tolist() == [0, 1, -1, 2]
    assert tok.decode(ids) == "AC[MASK]G"
    assert tok.decode(ids, skip_special_tokens=True) == "ACG"


def test_special_tokens_pattern_wraps_sequences():
    tok = NucleotideTokenizer(special_tokens_pattern="bos_eos")
    assert tok.encode("AC").tolist() == [2, 5, 6, 3]
    assert tok.encode("AC", add_special_tokens=False).tolist() == [5, 6]
    assert tok.decode(tok.encode("AC"), skip_special_tokens=True) == "AC"
    with pytest.raises(TokenizerUsageError):
        NucleotideTokenizer(special_tokens_pattern="cls_sep")


def test_bad_policy_and_out_of_vocabulary_ids_are_usage_errors():
    with pytest.raises(TokenizerUsageError):
        NucleotideTokenizer(soft_mask="keep")
    with pytest.raises(TokenizerUsageError, match="token id 20 at index 1"):
        NucleotideTokenizer().decode([5, 20])
    with pytest.raises(GenoLongError):
        NucleotideTokenizer().convert_tokens_to_ids(["A", "Q"])


def test_complement_token_ids():
    tok = NucleotideTokenizer(iupac="keep")
    comp = tok.complement_token_ids()
    assert comp[:5] == [0, 1, 2, 3, 4]
    tokens = tok.convert_ids_to_tokens(list(range(len(comp))))
    for i, t in enumerate(tokens[5:], start=5):
        assert tokens[comp[i]] == COMPLEMENT[t]
    assert [comp[c] for c in comp] == list(range(len(comp)))


def test_reverse_complement_ids_on_lists_arrays_and_tensors():
    tok = NucleotideTokenizer()
    ids = tok.encode("AACGN")
    expected = tok.encode("NCGTT").tolist()
    assert tok.reverse_complement_ids(ids.tolist()) == expected
    assert tok.reverse_complement_ids(ids).tolist() == expected
    batch = torch.tensor(np.stack([ids, tok.encode("GGGTA")]), dtype=torch.long)  # (B, L)
    out = tok.reverse_complement_ids(batch)
    assert out.dtype == torch.long and out[0].tolist() == expected
    assert tok.decode(out[1]) == "TACCC"


@PROPERTY
@given(seq=dna(ANY_CASE_IUPAC))
def test_round_trip_with_soft_mask_and_keep(seq):
    tok = NucleotideTokenizer(iupac="keep")
    ids, mask = tok.encode(seq, return_soft_mask=True)
    assert tok.decode(ids) == seq.upper()
    assert tok.decode(ids, soft_mask=mask) == seq
    assert tok.convert_tokens_to_ids(tok.tokenize(seq)) == ids.tolist()


@PROPERTY
@given(seq=dna(ANY_CASE_IUPAC))
def test_round_trip_to_n_normalizes_ambiguity(seq):
    tok = NucleotideTokenizer()
    normalized = "".join(c if c in "ACGT" else "N" for c in seq.upper())
    assert tok.decode(tok.encode(seq)) == normalized
    assert tok.encode(seq.encode()).tolist() == tok.encode(seq).tolist()


@PROPERTY
@given(seq=dna(ANY_CASE_IUPAC))
def test_reverse_complement_is_an_involution_matching_the_table(seq):
    rc = reverse_complement(seq)
    assert len(rc) == len(seq)
    assert all(rc[i] == COMPLEMENT[seq[len(seq) - 1 - i]] for i in range(len(seq)))
    assert reverse_complement(rc) == seq
    tok = NucleotideTokenizer(iupac="keep")
    ids = tok.encode(seq)
    rc_ids = tok.reverse_complement_ids(ids)
    assert tok.decode(rc_ids) == rc.upper()
    assert rc_ids.tolist() == tok.encode(rc).tolist()
    assert tok.reverse_complement_ids(rc_ids).tolist() == ids.tolist()


@PROPERTY
@given(seq=dna(IUPAC_UPPER, max_size=50), junk=st.sampled_from("EFILPQZ0123-.* "), at=st.integers(0, 50))
def test_any_foreign_character_is_detected(seq, junk, at):
    at = min(at, len(seq))
    bad = seq[:at] + junk + seq[at:]
    with pytest.raises(InvalidSequenceError) as info:
        NucleotideTokenizer(iupac="keep").encode(bad)
    assert info.value.position == at
