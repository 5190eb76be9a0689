"""evaluate's per-base scores for every tokenizer, against per-token forward passes written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genolong.data.annotation import CdsAnnotation
from genolong.errors import UsageError
from genolong.io.fasta import Fasta
from genolong.models import GenoLongForCausalLM
from genolong.pipelines.evaluate import encode_region, evaluate_language_model, model_log2_probs
from genolong.tokenizers.factory import build_tokenizer, model_config_fields
from tests.conftest import DATA
from tests.models.helpers import tiny_config

FASTA, GFF = DATA / "ecoli_200k.fa", DATA / "ecoli_200k.cds.gff3"
CONTIG = "MIIJ01000039.1"
START, END = 8500, 9400  # the 3' end of a minus-strand CDS (8306-8635), a plus-strand CDS (9052-9273), gaps


def causal_model(tokenizer, mixers="hyena*2", max_position=512):
    torch.manual_seed(0)
    return GenoLongForCausalLM(tiny_config(mixers, max_position=max_position, **model_config_fields(tokenizer))).eval()


@pytest.fixture(scope="module")
def region():
    with Fasta(FASTA) as fasta:
        seq = fasta.fetch(CONTIG, START, END)
        segments = CdsAnnotation(GFF, fasta.lengths).segments(CONTIG, START, END)
    return seq[:300] + "NNNNN" + seq[305:], segments  # an N run: its bases are never scored


def token_bits_by_explicit_context(model, ids, length, stride):
    """{t: log2 P(token t | its window's tokens before it)}: token t >= 1 is scored by the first window (starts
    0, stride, 2 stride, ...) that has it among its last `stride` tokens, or by the first window if t < length."""
    bits = {}
    for t in range(1, len(ids)):
        s = 0 if t < length else stride * math.ceil((t - length + 1) / stride)
        with torch.no_grad():
            logits = model(input_ids=torch.as_tensor(ids[s:t], dtype=torch.long)[None]).logits[0, -1]  # predicts t
        bits[t] = torch.log_softmax(logits.double(), -1)[ids[t]].item() / math.log(2)
    return bits


@pytest.mark.parametrize("spec", ["nucleotide", "kmer:3", "codon"])
def test_each_token_is_scored_once_and_its_bits_go_to_the_bases_it_spells(region, spec):
    seq, segments = region
    tokenizer = build_tokenizer(spec)
    cds = segments if spec == "codon" else None
    model = causal_model(tokenizer)
    ids, starts = encode_region(tokenizer, seq, cds)
    length, stride = 40, 16
    per_base = model_log2_probs(model, tokenizer, seq, (ids, starts), length, stride, batch_size=3)
    expected = np.full(len(seq), np.nan)
    for t, bits in token_bits_by_explicit_context(model, ids.tolist(), length, stride).items():
        spelled = tokenizer.decode([int(ids[t])])
        if spelled and set(spelled) <= set("ACGT"):  # N and the codon marker are not scored
            expected[starts[t] : starts[t] + len(spelled)] = bits / len(spelled)
    np.testing.assert_array_equal(np.isnan(per_base), np.isnan(expected))
    np.testing.assert_allclose(per_base[~np.isnan(per_base)], expected[~np.isnan(expected)], rtol=1e-4)
    assert np.isnan(per_base[300:305]).all()
    if spec == "codon":  # the annotated frames are used: fewer tokens than bases
        assert len(ids) < len(seq) - 100


def test_a_codon_model_is_evaluated_in_the_annotation_frames_and_refused_without(tmp_path):
    codon = build_tokenizer("codon")
    model_dir = tmp_path / "codon-model"
    causal_model(codon, max_position=1024).save_pretrained(model_dir)
    codon.save_pretrained(model_dir)
    regions, kwargs = [f"{CONTIG}:{START + 1}-{END}"], dict(train_regions=[f"{CONTIG}:1-8000"], length=64)
    with pytest.raises(UsageError, match="codon tokenizer .* none was given"):
        evaluate_language_model(model_dir, FASTA, regions, **kwargs)
    result = evaluate_language_model(model_dir, FASTA, regions, annotation=GFF, **kwargs)
    assert result["tokenizer"] == "CodonTokenizer"
    with Fasta(FASTA) as fasta:
        ids = codon.encode(fasta.fetch(CONTIG, START, END), cds=CdsAnnotation(GFF, fasta.lengths).segments(
            CONTIG, START, END))  # fmt: skip
    first_token_bases = len(codon.decode([int(ids[0])]))
    assert result["bases_scored"] == END - START - first_token_bases
    assert 1.0 < result["markov_bits_per_base"] < 2.5 and result["bits_per_base"] > 1.0
    # by default, windows span about the bases of the training windows (1024 when the model records none), at
    # most the model's context
    default = evaluate_language_model(model_dir, FASTA, regions, annotation=GFF, train_regions=kwargs["train_regions"])
    assert default["window_length"] == round(1024 * len(ids) / (END - START)) < 1024

    nucleotide_dir = tmp_path / "nucleotide-model"
    nucleotide = build_tokenizer("nucleotide")
    causal_model(nucleotide).save_pretrained(nucleotide_dir)
    nucleotide.save_pretrained(nucleotide_dir)
    with pytest.raises(UsageError, match="does not use one"):
        evaluate_language_model(nucleotide_dir, FASTA, regions, annotation=GFF, **kwargs)


@pytest.mark.parametrize("length, stride", [(1, None), (64, 64), (64, 0)])
def test_impossible_windows_are_refused_before_any_work(tmp_path, length, stride):
    nucleotide = build_tokenizer("nucleotide")
    causal_model(nucleotide).save_pretrained(tmp_path)
    nucleotide.save_pretrained(tmp_path)
    with pytest.raises(UsageError, match="length must be at least 2 and the stride in 1..length-1"):
        evaluate_language_model(tmp_path, tmp_path / "absent.fa", ["x"], length=length, stride=stride)
