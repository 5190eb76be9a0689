"""KmerTokenizer: vocabulary layout, the step/ownership rule against a plain-Python reference, round trips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from genolong.tokenizers import KmerTokenizer, TokenizerUsageError, reverse_complement
from genolong.tokenizers.vocab import UNK_ID
from tests.tokenizers.strategies import ANY_CASE_IUPAC, PROPERTY, dna

K_STRIDES = [(k, s) for k in (2, 3, 4, 6) for s in range(1, k + 1)]


def reference_tokens(seq: str, k: int, s: int) -> list[str]:
    """The documented rule, written plainly: step p owns [p, p+s); a clean full window is one k-mer token."""
    seq = "".join(c if c in "ACGT" else "N" for c in seq.upper())
    out: list[str] = []
    for p in range(0, len(seq), s):
        window = seq[p : p + k]
        if len(window) == k and set(window) <= set("ACGT"):
            out.append(window)
        else:
            out.extend(seq[p : p + s])
    return out


def test_vocabulary_layout():
    tok = KmerTokenizer(3)
    vocab = tok.get_vocab()
    assert [vocab[t] for t in ("[PAD]", "[MASK]", "A", "N")] == [0, 4, 5, 9]
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=3)]
    assert [vocab[km] for km in kmers] == list(range(10, 10 + 64))
    assert len(tok) == 74 and tok.kmer_offset == 10
    assert KmerTokenizer(3, iupac="keep").kmer_offset == 20
    assert KmerTokenizer(6).encode("ACGTAC").dtype == np.uint16


def test_examples_of_the_rule():
    tok = KmerTokenizer(3)
    assert tok.convert_ids_to_tokens(tok.encode("ACGNACGTAC").tolist()) == ["ACG", "N", "A", "C", "GTA", "C"]
    over = KmerTokenizer(3, 1)
    ids, starts = over.encode_with_positions("ACGTA")
    assert over.convert_ids_to_tokens(ids.tolist()) == ["ACG", "CGT", "GTA", "T", "A"]
    assert starts.tolist() == [0, 1, 2, 3, 4]
    assert over.decode(ids) == "ACGTA"


@pytest.mark.parametrize("k, s", [(2, 3), (1, 1), (3, 0), (11, 11)])
def test_bad_k_or_stride(k, s):
    with pytest.raises(TokenizerUsageError):
        KmerTokenizer(k, s)


@PROPERTY
@given(seq=dna("ACGTN", max_size=200), ks=st.sampled_from(K_STRIDES))
def test_matches_reference_rule(seq, ks):
    k, s = ks
    tok = KmerTokenizer(k, s)
    assert tok.convert_ids_to_tokens(tok.encode(seq).tolist()) == reference_tokens(seq, k, s)


@PROPERTY
@given(seq=dna(ANY_CASE_IUPAC, max_size=200), ks=st.sampled_from(K_STRIDES), keep=st.booleans())
def test_round_trip_and_no_unknown(seq, ks, keep):
    tok = KmerTokenizer(*ks, iupac="keep" if keep else "to_n")
    ids, mask = tok.encode(seq, return_soft_mask=True)
    assert UNK_ID not in ids.tolist()
    to_n = "".join(c if c.upper() in "ACGT" else ("N" if c.isupper() else "n") for c in seq)
    assert tok.decode(ids, soft_mask=mask) == (seq if keep else to_n)
    assert tok.decode(ids) == (seq if keep else to_n).upper()


@PROPERTY
@given(seq=dna("ACGTN", max_size=200), ks=st.sampled_from(K_STRIDES))
def test_token_starts_are_owned_positions(seq, ks):
    k, s = ks
    tok = KmerTokenizer(k, s)
    ids, starts = tok.encode_with_positions(seq)
    is_kmer = ids >= tok.kmer_offset
    assert np.all(starts[is_kmer] % s == 0)
    assert np.all(np.diff(starts) > 0)
    assert set(starts.tolist()) | {p + j for p in starts[is_kmer].tolist() for j in range(s)} == set(
        range(len(seq))
    )


@PROPERTY
@given(seq=dna("ACGTN", max_size=200), k=st.sampled_from([2, 3, 6]))
def test_reverse_complement_in_token_space(seq, k):
    tok = KmerTokenizer(k)
    ids = tok.encode(seq)
    rc_ids = tok.reverse_complement_ids(ids)
    assert tok.decode(rc_ids) == reverse_complement(seq)
    assert tok.reverse_complement_ids(rc_ids).tolist() == ids.tolist()
    if len(seq) % k == 0 and "N" not in seq:
        assert rc_ids.tolist() == tok.encode(reverse_complement(seq)).tolist()


def test_reverse_complement_refused_for_overlapping_kmers():
    with pytest.raises(TokenizerUsageError, match="stride"):
        KmerTokenizer(3, 1).reverse_complement_ids([10, 11])


def test_complement_token_ids_are_reverse_complement_kmers():
    tok = KmerTokenizer(3)
    comp = tok.complement_token_ids()
    tokens = tok.convert_ids_to_tokens(list(range(len(tok))))
    for i in range(tok.kmer_offset, len(tok)):
        assert tokens[comp[i]] == reverse_complement(tokens[i])
    assert tokens[comp[tok.convert_tokens_to_ids("A")]] == "T"


@pytest.mark.parametrize("k", [7, 8])
def test_large_k_ids_do_not_overflow(k):
    tok = KmerTokenizer(k)
    ids = tok.encode("T" * k + "A" * k + "GC")
    assert ids.tolist() == [tok.kmer_offset + 4**k - 1, tok.kmer_offset, 7, 6]
    assert len(tok) == tok.kmer_offset + 4**k and tok.decode(ids) == "T" * k + "A" * k + "GC"
