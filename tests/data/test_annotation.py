"""CDS annotation for training windows: the lookup, the frames served by GenomeWindows, and bad annotations."""

from __future__ import annotations

import logging

import pytest
import torch
from Bio.Seq import Seq
from hypothesis import given, settings
from hypothesis import strategies as st

from genolong.data.annotation import CdsAnnotation, flip
from genolong.data.datamodule import GenomeDataModule
from genolong.data.datasets import GenomeWindows
from genolong.errors import InconsistentDataError, MalformedInputError, UsageError
from genolong.io.fasta import Fasta
from genolong.io.gff import read_gff
from genolong.tokenizers.cds import CdsSegment
from genolong.tokenizers.factory import build_tokenizer
from tests.conftest import DATA

CODON = build_tokenizer("codon")
CONTIG = "MIIJ01000039.1"


def write_gff(path, rows):
    lines = ["##gff-version 3"]
    for i, (contig, start, end, strand, phase) in enumerate(rows):
        lines.append(f"{contig}\tt\tCDS\t{start + 1}\t{end}\t.\t{strand}\t{phase}\tID=c{i}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _key(segment):
    return segment.start, segment.end, segment.strand, segment.phase


features = st.lists(
    st.tuples(st.integers(0, 480), st.integers(1, 300), st.sampled_from("+-"), st.integers(0, 2)), max_size=25
)


@settings(max_examples=80, deadline=None)
@given(rows=features, start=st.integers(0, 499), width=st.integers(1, 200))
def test_segments_are_exactly_the_overlapping_cds(tmp_path_factory, rows, start, width):
    rows = [(s, min(s + n, 500), strand, phase) for s, n, strand, phase in rows]
    gff = write_gff(tmp_path_factory.mktemp("gff") / "a.gff3", [("c", *r) for r in rows])
    if not rows:
        with pytest.raises(InconsistentDataError, match="no CDS"):
            CdsAnnotation(gff, {"c": 500})
        return
    annotation = CdsAnnotation(gff, {"c": 500})
    end = min(start + width, 500)
    expected = [
        CdsSegment(s - start, e - start, strand, phase) for s, e, strand, phase in rows if s < end and e > start
    ]
    assert sorted(annotation.segments("c", start, end), key=_key) == sorted(expected, key=_key)
    assert annotation.segments("other", start, end) == []


def test_flipped_segments_encode_the_reverse_complement_window(ecoli_fasta, ecoli_gff):
    annotation = CdsAnnotation(ecoli_gff, Fasta(ecoli_fasta).lengths)
    seq = Fasta(ecoli_fasta).fetch(CONTIG, 10_000, 12_000)
    cds = annotation.segments(CONTIG, 10_000, 12_000)
    assert cds and all(a.end <= b.start for a, b in zip(cds, cds[1:], strict=False))  # coding, no overlapping CDS
    forward = CODON.encode(seq, cds=cds)
    reverse = CODON.encode(str(Seq(seq).reverse_complement()), cds=flip(cds, len(seq)))
    assert list(CODON.reverse_complement_ids(forward)) == list(reverse)


def test_served_windows_follow_the_annotated_frame_on_both_strands(ecoli_fasta, ecoli_gff):
    windows = GenomeWindows(ecoli_fasta, CODON, 512, sampling="random", samples_per_epoch=40,
                            reverse_complement=True, annotation=ecoli_gff, seed=7)  # fmt: skip
    fasta = Fasta(ecoli_fasta)
    truth = [f for f in read_gff(ecoli_gff)]
    strands, with_codons = set(), 0
    for index in range(len(windows)):
        item = windows[index]
        start, end = item["start"], item["end"]
        overlapping = [f for f in truth if f.start < end and f.end > start]
        seq = fasta.fetch(CONTIG, start, end)
        if item["minus_strand"]:  # the reverse strand read 5'->3', its CDS mirrored (strand swapped, same phase)
            seq = str(Seq(seq).reverse_complement())
            cds = [CdsSegment(end - f.end, end - f.start, "+" if f.strand == "-" else "-", f.phase)
                   for f in overlapping]  # fmt: skip
        else:
            cds = [CdsSegment(f.start - start, f.end - start, f.strand, f.phase) for f in overlapping]
        assert item["input_ids"].tolist() == CODON.encode(seq, cds=cds).tolist()
        strands.add(item["minus_strand"])
        with_codons += len(item["input_ids"]) < end - start  # codons: fewer tokens than bases
    assert strands == {False, True} and with_codons > 30  # E. coli is ~88% coding


@pytest.mark.parametrize("strand", ["+", "-"])
def test_codon_tokens_of_a_gene_translate_to_its_protein(ecoli_fasta, ecoli_gff, strand):
    gene = next(f for f in read_gff(ecoli_gff) if f.strand == strand and f.phase == 0)
    tile = GenomeWindows(ecoli_fasta, CODON, gene.end - gene.start + 60, sampling="tile",
                         regions=[f"{CONTIG}:{gene.start + 1 - 30}-{gene.end + 30}"], annotation=ecoli_gff)  # fmt: skip
    tokens = CODON.convert_ids_to_tokens(tile[0]["input_ids"].tolist())
    codons = [t for t in tokens if len(t.lstrip("-")) == 3]
    # '-XYZ' tokens hold minus-strand codons at their forward positions: read them right to left
    if strand == "-":
        assert all(t.startswith("-") for t in codons)
        codons = [t[1:] for t in reversed(codons)]
    gene_seq = Seq(Fasta(ecoli_fasta).fetch(CONTIG, gene.start, gene.end))
    gene_seq = gene_seq if strand == "+" else gene_seq.reverse_complement()
    assert str(Seq("".join(codons)).translate(table=11)) == str(gene_seq.translate(table=11))


@pytest.mark.parametrize(
    ("row", "error", "words"),
    [
        ((CONTIG, 10, 100, "+", "."), MalformedInputError, "no phase"),
        ((CONTIG, 10, 100, ".", "0"), MalformedInputError, "no strand"),
        ((CONTIG, 10, 300_000, "+", "0"), InconsistentDataError, "past the end"),
        (("chrX", 10, 100, "+", "0"), InconsistentDataError, "chrX"),
    ],
)
def test_annotations_that_cannot_give_frames_are_refused_naming_the_line(tmp_path, ecoli_fasta, row, error, words):
    gff = write_gff(tmp_path / "bad.gff3", [(CONTIG, 500, 900, "+", "0"), row] if row[0] == CONTIG else [row])
    with pytest.raises(error, match=words) as caught:
        CdsAnnotation(gff, Fasta(ecoli_fasta).lengths)
    assert "bad.gff3" in str(caught.value)
    if error is MalformedInputError:
        assert "bad.gff3:3:" in str(caught.value)


def test_cds_on_contigs_the_fasta_lacks_are_counted(tmp_path, ecoli_fasta, caplog):
    gff = write_gff(tmp_path / "a.gff3", [(CONTIG, 500, 900, "+", "0"), ("plasmid", 1, 90, "-", "0")])
    with caplog.at_level(logging.WARNING):
        annotation = CdsAnnotation(gff, Fasta(ecoli_fasta).lengths)
    assert annotation.cds_count == 1
    assert "1 CDS on 1 contigs not in the FASTA" in caplog.text and "plasmid" in caplog.text


def test_the_data_module_wants_an_annotation_exactly_with_the_codon_tokenizer(ecoli_fasta, ecoli_gff, caplog):
    with pytest.raises(UsageError, match="does not use one"):
        GenomeDataModule(str(ecoli_fasta), tokenizer="nucleotide", annotation=str(ecoli_gff))
    with caplog.at_level(logging.WARNING):
        GenomeDataModule(str(ecoli_fasta), tokenizer="codon")
    assert "no CDS annotation" in caplog.text
    module = GenomeDataModule(str(ecoli_fasta), tokenizer="codon", annotation=str(ecoli_gff))
    assert module.annotation.cds_count == len(list(read_gff(ecoli_gff)))


@pytest.mark.parametrize("spec", ["nucleotide", "kmer:3", "codon"])
def test_bits_per_base_counts_the_bases_tokens_spell(ecoli_fasta, ecoli_gff, spec):
    from genolong.training.lm import LanguageModelModule

    tokenizer = build_tokenizer(spec)
    annotation = ecoli_gff if spec == "codon" else None
    tiles = GenomeWindows(ecoli_fasta, tokenizer, 600, sampling="tile", regions=[f"{CONTIG}:20001-21800"],
                          annotation=annotation)  # fmt: skip
    module = LanguageModelModule(preset="tiny-hyena", tokenizer=spec)
    ids = [tiles[i]["input_ids"] for i in range(len(tiles))]
    batch = {"input_ids": torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=tokenizer.pad_token_id)}
    batch["attention_mask"] = batch["input_ids"] != tokenizer.pad_token_id
    nats, tokens, bases = module.lm_loss(batch)
    # every base of this N-free stretch is predicted, except those of each window's first token
    first = sum(len(tokenizer.decode([int(row[0])])) for row in ids)
    assert bases.item() == 1800 - first
    assert tokens.item() == sum(len(row) - 1 for row in ids)
    assert (tokens < bases) == (spec != "nucleotide")


def test_pipelines_that_give_no_annotation_refuse_codon_models(ecoli_fasta):
    from genolong.data.task_datamodule import SequenceTaskDataModule
    from genolong.models import GenoLongForCausalLM, get_preset
    from genolong.pipelines.embed import embed_sequences
    from genolong.pipelines.supervised_vep import variant_features
    from genolong.pipelines.variant_effect import VariantScorer
    from genolong.tokenizers.factory import model_config_fields

    model = GenoLongForCausalLM(get_preset("tiny-hyena", **model_config_fields(CODON))).eval()
    with pytest.raises(UsageError, match="codon tokenizer reads codons .* none was given"):
        VariantScorer(model, CODON, ecoli_fasta)  # variant scoring takes one (annotation=)
    with pytest.raises(UsageError, match="codon tokenizer reads codons .* no CDS segments were given"):
        embed_sequences(model, CODON, ["ATGAAATAG"])  # embedding takes them (cds=)
    with pytest.raises(UsageError, match="supervised variant-effect prediction .* codon tokenizer needs one"):
        variant_features(model, CODON, ecoli_fasta, [], window=64)
    with pytest.raises(UsageError, match="fine-tuning .* codon tokenizer needs one"):
        SequenceTaskDataModule(train=str(DATA / "ecoli_200k.labels.tsv"), tokenizer="codon")
    nucleotide = build_tokenizer("nucleotide")
    plain = GenoLongForCausalLM(get_preset("tiny-hyena", **model_config_fields(nucleotide))).eval()
    assert embed_sequences(plain, nucleotide, ["ATGAAATAG"]).shape == (1, plain.config.d_model)
