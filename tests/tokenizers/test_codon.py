"""CodonTokenizer: frame rule, strands, splicing, unknown codons, round trips, real E. coli data, proteins."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from Bio.Seq import Seq
from hypothesis import given
from hypothesis import strategies as st

from genolong.tokenizers import (
    CdsSegment,
    CodonTokenizer,
    InvalidSequenceError,
    TokenizerUsageError,
    reverse_complement,
    reverse_translate,
)
from genolong.tokenizers.cds import MINUS, PLUS, codon_start_kind
from tests.tokenizers.strategies import PROPERTY, dna

TOK = CodonTokenizer()


def tokens(ids) -> list[str]:
    return TOK.convert_ids_to_tokens(np.asarray(ids).tolist())


def is_codon(token: str) -> bool:
    return len(token) == 3 or (len(token) == 4 and token[0] == "-")


def in_frame(pos: int, token: str, seg: CdsSegment) -> bool:
    """The frame rule: a codon token starts at start + phase (+) or ends at end - phase (-), modulo 3."""
    if not (seg.start <= pos and pos + 3 <= seg.end) or (token[0] == "-") != (seg.strand == "-"):
        return False
    if seg.strand == "+":
        return (pos - seg.start - seg.phase) % 3 == 0
    return (seg.end - seg.phase - pos - 3) % 3 == 0


def test_vocabulary_layout():
    vocab = TOK.get_vocab()
    assert [vocab[t] for t in ("[PAD]", "A", "N", "[UNK_CODON]", "AAA", "TTT", "-AAA", "-TTT")] == [
        0,
        5,
        9,
        10,
        11,
        74,
        75,
        138,
    ]
    codons = ["".join(p) for p in itertools.product("ACGT", repeat=3)]
    assert [vocab[c] for c in codons] == list(range(11, 75))
    assert CodonTokenizer(iupac="keep").unk_codon_id == 20


def test_plus_strand_with_phase_unknown_codon_and_trailing_bases():
    seq = "GGCATGNAACCTAAG"
    ids, starts = TOK.encode_with_positions(seq, cds=[(2, 15, "+", 1)])
    assert tokens(ids) == ["G", "G", "C", "ATG", "[UNK_CODON]", "N", "A", "A", "CCT", "AAG"]
    assert starts.tolist() == [0, 1, 2, 3, 6, 6, 7, 8, 9, 12]
    assert TOK.decode(ids) == seq
    ids, _ = TOK.encode_with_positions(seq[:-1], cds=[(2, 14, "+", 1)])
    assert tokens(ids)[-3:] == ["CCT", "A", "A"]  # the incomplete trailing codon is kept as bases


def test_minus_strand_codons_sit_at_forward_positions():
    gene = "ATGAAACCCTAA"  # read on the minus strand
    seq = "GG" + reverse_complement(gene) + "C"
    ids, starts = TOK.encode_with_positions(seq, cds=[CdsSegment(2, 14, "-", 0)])
    assert tokens(ids) == ["G", "G", "-TAA", "-CCC", "-AAA", "-ATG", "C"]
    assert starts.tolist() == [0, 1, 2, 5, 8, 11, 14]
    assert TOK.decode(ids) == seq
    protein = "".join(t[1:] for t in reversed(tokens(ids)) if is_codon(t))
    assert str(Seq(protein).translate(table=11)) == "MKP*"


def test_spliced_cds_keeps_frame_in_each_exon():
    exon1, intron, exon2 = "ATGAAAC", "GTAAGTTTTAG", "CCGGTTAA"  # codon CCC is split by the intron
    seq = exon1 + intron + exon2
    cds = [[(0, 7, "+", 0), (18, 26, "+", 2)]]  # one transcript: two segments, phase 2 skips the "CC"
    ids = TOK.encode(seq, cds=cds)
    toks = tokens(ids)
    assert toks[:3] == ["ATG", "AAA", "C"] and toks[-4:] == ["C", "C", "GGT", "TAA"]
    assert len(toks) == 3 + len(intron) + 4 and TOK.decode(ids) == seq


def test_window_clips_segments_without_losing_frame():
    seq = "ACGTACGTAC"
    ids, starts = TOK.encode_with_positions(seq, cds=[(-4, 30, "+", 0)])  # frame: codons start at -4 + 3j
    assert [p for p, t in zip(starts.tolist(), tokens(ids), strict=True) if is_codon(t)] == [2, 5]
    assert TOK.decode(ids) == seq


def test_overlapping_cds_first_segment_wins():
    seq = "ATGAAATGACCC"
    ids, starts = TOK.encode_with_positions(seq, cds=[(0, 9, "+", 0), (6, 12, "+", 0), (4, 10, "+", 1)])
    assert tokens(ids) == ["ATG", "AAA", "TGA", "CCC"]
    assert TOK.decode(ids) == seq


def test_bad_segments_and_text_specials():
    with pytest.raises(TokenizerUsageError):
        TOK.encode("ACGT", cds=[(0, 4, ".", 0)])
    with pytest.raises(TokenizerUsageError):
        TOK.encode("ACGT", cds=[(0, 4, "+", 3)])
    with pytest.raises(InvalidSequenceError, match="position 2"):
        TOK.encode("AC[MASK]GT")


@st.composite
def sequence_with_cds(draw):
    seq = draw(dna("ACGTNacgtRY", min_size=1, max_size=150))
    segments = []
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.integers(-5, len(seq)))
        end = draw(st.integers(start + 1, len(seq) + 6))
        segments.append(CdsSegment(start, end, draw(st.sampled_from("+-")), draw(st.integers(0, 2))))
    return seq, segments


@PROPERTY
@given(case=sequence_with_cds())
def test_round_trip_and_frame_rule(case):
    seq, segments = case
    ids, mask = TOK.encode(seq, cds=segments, return_soft_mask=True)
    assert TOK.decode(ids, soft_mask=mask) == "".join(
        c if c.upper() in "ACGT" else "Nn"[c.islower()] for c in seq
    )
    ids, starts = TOK.encode_with_positions(seq, cds=segments)
    toks = tokens(ids)
    for pos, tok in zip(starts.tolist(), toks, strict=True):
        if is_codon(tok):
            assert any(in_frame(pos, tok, seg) for seg in segments), (pos, tok)
    for i, tok in enumerate(toks):  # a marker is followed by the three bases of its codon
        if tok == "[UNK_CODON]":
            assert starts[i + 1 : i + 4].tolist() == [starts[i], starts[i] + 1, starts[i] + 2]


@PROPERTY
@given(case=sequence_with_cds())
def test_reverse_complement_ids_equal_encoding_of_flipped_window(case):
    seq, segments = case
    n = len(seq)
    flipped = [CdsSegment(n - g.end, n - g.start, "-" if g.strand == "+" else "+", g.phase) for g in segments]
    ids = TOK.encode(seq, cds=segments)
    rc_ids = TOK.reverse_complement_ids(ids)
    assert TOK.decode(rc_ids) == TOK.decode(TOK.encode(reverse_complement(seq)))
    if len({(g.start, g.end) for g in segments}) == len(segments) and not _overlap(segments):
        assert rc_ids.tolist() == TOK.encode(reverse_complement(seq), cds=flipped).tolist()
    assert TOK.reverse_complement_ids(rc_ids).tolist() == ids.tolist()


def reference_starts(segments: list[CdsSegment], length: int) -> dict[int, str]:
    """The overlap rule as a plain loop: segments in (start, end, strand) order, first come first served."""
    claimed, out = [False] * length, {}
    for seg in sorted(segments, key=lambda g: (g.start, g.end, g.strand)):
        if seg.strand == "+":
            starts = range(seg.start + seg.phase, seg.end - 2, 3)
        else:
            starts = range(seg.end - seg.phase - 3, seg.start - 1, -3)
        for p in starts:
            if p >= 0 and p + 3 <= length and not any(claimed[p : p + 3]):
                claimed[p : p + 3] = [True] * 3
                out[p] = seg.strand
    return out


@PROPERTY
@given(case=sequence_with_cds())
def test_vectorised_codon_starts_match_the_plain_rule(case):
    seq, segments = case
    segments = segments + segments[:1]  # a duplicate segment: every one of its codons is contested
    kind = codon_start_kind(segments, len(seq))
    got = {int(p): "+" if kind[p] == PLUS else "-" for p in np.flatnonzero(kind)}
    assert set(np.unique(kind)) <= {0, PLUS, MINUS}
    assert got == reference_starts(segments, len(seq))


def _overlap(segments: list[CdsSegment]) -> bool:
    spans = sorted((g.start, g.end) for g in segments)
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


def read_slice(fasta: Path, gff: Path) -> tuple[str, list[CdsSegment]]:
    seq = "".join(line.strip() for line in fasta.read_text().splitlines() if not line.startswith(">"))
    segments = []
    for line in gff.read_text().splitlines():
        cols = line.split("\t")
        if line.startswith("#") or len(cols) != 9 or cols[2] != "CDS":
            continue
        segments.append(CdsSegment(int(cols[3]) - 1, int(cols[4]), cols[6], int(cols[7])))  # GFF3 is 1-based
    return seq, segments


def test_ecoli_slice_frame_rule_and_translation(ecoli_fasta, ecoli_gff):
    seq, segments = read_slice(ecoli_fasta, ecoli_gff)
    assert len(segments) > 100 and {g.strand for g in segments} == {"+", "-"}
    ids, starts = TOK.encode_with_positions(seq, cds=segments)
    assert TOK.decode(ids) == seq.upper()
    toks = tokens(ids)
    n_codons = 0
    for pos, tok in zip(starts.tolist(), toks, strict=True):
        if is_codon(tok):
            n_codons += 1
            assert any(in_frame(pos, tok, seg) for seg in segments)
    assert n_codons >= 0.98 * sum((g.end - g.start - g.phase) // 3 for g in segments)
    for (
        seg
    ) in segments:  # each CDS alone: its codon tokens translate to the CDS's protein, stops only at the end
        window = seq[seg.start : seg.end]
        ids = TOK.encode(window, cds=[(0, len(window), seg.strand, seg.phase)])
        codons = [t.lstrip("-") for t in tokens(ids) if is_codon(t)]
        if seg.strand == "-":
            codons.reverse()
        protein = str(Seq("".join(codons)).translate(table=11))
        cds_seq = window[seg.phase :] if seg.strand == "+" else reverse_complement(window)[seg.phase :]
        assert protein == str(Seq(cds_seq[: len(cds_seq) // 3 * 3]).translate(table=11))
        assert "*" not in protein[:-1]


@PROPERTY
@given(protein=st.text(alphabet=st.sampled_from("ACDEFGHIKLMNPQRSTVWY"), max_size=60))
def test_reverse_translate_round_trips_through_translation(protein):
    for table in (1, 11, 4):
        dna_seq = reverse_translate(protein + "*", table)
        assert str(Seq(dna_seq).translate(table=table)) == protein + "*"
    ids = TOK.encode_protein(protein)
    assert tokens(ids) == [
        c for c in (reverse_translate(protein)[i : i + 3] for i in range(0, 3 * len(protein), 3))
    ]


def test_reverse_translate_choices_rna_and_errors():
    assert reverse_translate("MKLX*") == "ATGAAATTANNNTAA"
    assert reverse_translate("mk", rna=True) == "AUGAAA"
    assert reverse_translate("L", codons={"L": "CTG"}) == "CTG"
    assert (
        CodonTokenizer(translation_table=4).reverse_translate("W*") == "TGATAA"
    )  # TGA (before TGG) is Trp in 4
    with pytest.raises(TokenizerUsageError):
        reverse_translate("L", codons={"L": "ATG"})
    with pytest.raises(InvalidSequenceError, match="'B' at position 2"):
        reverse_translate("MKB")
    with pytest.raises(TokenizerUsageError):
        reverse_translate("M", table=99)


def test_rna_input_with_cds():
    ids = TOK.encode("AUGAAA", cds=[(0, 6, "+", 0)], rna=True)
    assert tokens(ids) == ["ATG", "AAA"]
    assert TOK.decode(ids, rna=True) == "AUGAAA"


def test_reverse_complement_ids_on_torch_batches():

    seqs = ["GGATGNAATAAC", "ATGAAACCNTAA"]
    cds = [(2, 11, "+", 0)], [(0, 12, "-", 0)]
    batch = TOK.batch_encode(seqs, cds=list(cds), return_tensors="pt")["input_ids"]  # (B, T), padded
    out = TOK.reverse_complement_ids(batch)
    assert out.dtype == batch.dtype
    assert out.tolist() == [TOK.reverse_complement_ids(row).tolist() for row in batch.numpy()]
    assert TOK.decode(out, skip_special_tokens=True) == [reverse_complement(s) for s in seqs]
