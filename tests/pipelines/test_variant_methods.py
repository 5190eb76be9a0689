"""Variant-scoring methods, window modes and prefix reuse, each against an independent computation.

Models here are random-initialised tiny ones: these tests check that each method computes what it defines,
which needs no training (the trained-model checks are in test_variant_effect.py and test_planted_motif.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genolong.errors import UsageError
from genolong.io.alleles import Variant
from genolong.io.fasta import Fasta
from genolong.models import GenoLongForCausalLM, GenoLongForMaskedLM, GenoLongForSequenceClassification
from genolong.pipelines.variant_effect import VariantScorer
from genolong.tokenizers.alphabet import reverse_complement
from genolong.tokenizers.factory import build_tokenizer, model_config_fields
from genolong.tokenizers.nucleotide import NucleotideTokenizer
from tests.conftest import DATA
from tests.models.helpers import FAMILIES, tiny_config

FASTA = DATA / "ecoli_200k.fa"
VCF = DATA / "ecoli_200k.variants.vcf.gz"
CONTIG = "MIIJ01000039.1"
TOKENIZER = build_tokenizer("nucleotide")


def make(model_class, mixers: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    fields = {**model_config_fields(TOKENIZER), "max_position": 256, **overrides}
    return model_class(tiny_config(mixers, **fields)).eval()


@pytest.fixture(scope="module")
def fasta():
    with Fasta(FASTA) as f:
        yield f


def encode(seq: str) -> torch.Tensor:
    return torch.as_tensor(TOKENIZER.encode(seq), dtype=torch.long)[None]  # (1, L)


def log_prob(model, seq: str) -> np.ndarray:
    """(len(seq) - 1,) log P(base t | bases < t) from one full forward pass, float64."""
    ids = encode(seq)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits.double(), dim=-1)[0]
    return logp[:-1].gather(-1, ids[0, 1:, None])[:, 0].numpy()


@pytest.mark.parametrize("family", ["hyena", "mamba2", "hybrid", "mlstm"])
@pytest.mark.parametrize("mode", ["centered", "upstream"])
def test_prefix_reuse_gives_the_scores_of_full_passes(family, mode, fasta):
    model = make(GenoLongForCausalLM, FAMILIES[family])
    options = dict(window=65, window_mode=mode, batch_size=4)
    with VariantScorer(model, TOKENIZER, fasta, reuse_prefix=False, **options) as naive:
        slow = naive.score_vcf(VCF, progress=False)
        naive.run.reuse_prefix = True
        fast = naive.score_vcf(VCF, progress=False)
        naive.run.chunk_tokens = 7  # prefix and suffixes in pieces of 7 tokens, the cache carrying the context
        pieces = naive.score_vcf(VCF, progress=False)
    scored = fast["status"] == "scored"
    assert scored.sum() == 10 and (fast["status"] == slow["status"]).all()
    for column in ("score", "score_forward", "score_reverse"):
        np.testing.assert_allclose(fast.loc[scored, column], slow.loc[scored, column], atol=2e-4, rtol=1e-4)
        np.testing.assert_allclose(pieces.loc[scored, column], slow.loc[scored, column], atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("family", ["hyena", "mamba2", "mlstm"])
def test_prefix_reuse_is_exact_when_the_prefix_is_shorter_than_the_short_convolution(family, fasta):
    """SNVs at the contig start share 0..7 bases of prefix: fewer than a short convolution's taps."""
    model = make(GenoLongForCausalLM, FAMILIES[family], hyena_short_conv=7)
    head = fasta.fetch(CONTIG, 0, 9).upper()
    variants = [Variant(CONTIG, pos, head[pos], "A" if head[pos] != "A" else "C") for pos in range(8)]
    scores = {}
    for reuse in (False, True):
        with VariantScorer(model, TOKENIZER, fasta, window=33, reuse_prefix=reuse, rc_average=False) as scorer:
            scores[reuse] = scorer.score(variants, progress=False)["score"].to_numpy()
    np.testing.assert_allclose(scores[True], scores[False], atol=2e-5, rtol=1e-5)


def test_upstream_window_scores_the_allele_given_the_bases_before_it(fasta):
    model = make(GenoLongForCausalLM, FAMILIES["hybrid"], seed=1)
    pos, window = 5000, 33
    base = fasta.fetch(CONTIG, pos, pos + 1).upper()
    alt = "A" if base != "A" else "G"
    with VariantScorer(model, TOKENIZER, fasta, window=window, window_mode="upstream") as scorer:
        row = scorer.score([Variant(CONTIG, pos, base, alt)], progress=False).iloc[0]
    before = fasta.fetch(CONTIG, pos - (window - 1), pos).upper()
    after = fasta.fetch(CONTIG, pos + 1, pos + window).upper()
    forward = log_prob(model, before + alt)[-1] - log_prob(model, before + base)[-1]
    rc = reverse_complement
    reverse = log_prob(model, rc(alt + after))[-1] - log_prob(model, rc(base + after))[-1]
    assert row["score_forward"] == pytest.approx(forward, abs=1e-4)
    assert row["score_reverse"] == pytest.approx(reverse, abs=1e-4)
    assert (row["window_start"], row["window_end"]) == (pos - (window - 1), pos + 1)


def test_masked_marginal_scores_the_masked_site_and_refuses_indels(fasta):
    model = make(GenoLongForMaskedLM, FAMILIES["mamba2"], bidirectional=True)
    pos, window = 7000, 21
    ref_base = fasta.fetch(CONTIG, pos, pos + 1).upper()
    alt_base = "T" if ref_base != "T" else "C"
    deletion = Variant(CONTIG, pos, fasta.fetch(CONTIG, pos, pos + 2).upper(), ref_base)
    with VariantScorer(model, TOKENIZER, fasta, window=window, rc_average=False) as scorer:
        assert scorer.method == "masked_marginal"
        table = scorer.score([Variant(CONTIG, pos, ref_base, alt_base), deletion], progress=False)
    assert table["status"].tolist() == ["scored", "unsupported_by_method"]
    ids = encode(fasta.fetch(CONTIG, pos - 10, pos + 11).upper())
    ids[0, 10] = TOKENIZER.mask_token_id
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits.double(), dim=-1)[0, 10]
    expected = logp[TOKENIZER.convert_tokens_to_ids(alt_base)] - logp[TOKENIZER.convert_tokens_to_ids(ref_base)]
    assert table["score"][0] == pytest.approx(float(expected), abs=1e-4)


def test_supervised_delta_is_the_change_of_the_prediction(fasta):
    model = make(GenoLongForSequenceClassification, FAMILIES["hyena"], num_labels=3)
    pos, window = 9000, 31
    ref = fasta.fetch(CONTIG, pos - 15, pos + 16).upper()
    alt = ref[:15] + ("A" if ref[15] != "A" else "C") + ref[16:]
    with VariantScorer(model, TOKENIZER, fasta, window=window, target=1) as scorer:
        assert scorer.method == "supervised"
        row = scorer.score([Variant(CONTIG, pos, ref[15], alt[15])], progress=False).iloc[0]

    def probabilities(seq):
        with torch.no_grad():
            return torch.softmax(model(input_ids=encode(seq)).logits.double(), dim=-1)

    forward = (probabilities(alt) - probabilities(ref))[0]
    reverse = (probabilities(reverse_complement(alt)) - probabilities(reverse_complement(ref)))[0]
    expected = ((forward + reverse) / 2).numpy()
    np.testing.assert_allclose(row[["delta_0", "delta_1", "delta_2"]].to_numpy(float), expected, atol=1e-5)
    assert row["score"] == pytest.approx(expected[1], abs=1e-5)
    assert row["score_forward"] == pytest.approx(float(forward[1]), abs=1e-5)


def test_a_strand_symmetric_model_is_not_scored_twice(fasta):
    model = make(GenoLongForSequenceClassification, FAMILIES["hyena"], num_labels=1, rc_mode="average")
    base = fasta.fetch(CONTIG, 3000, 3001).upper()
    with VariantScorer(model, TOKENIZER, fasta, window=31) as scorer:
        row = scorer.score([Variant(CONTIG, 3000, base, "A" if base != "A" else "C")], progress=False).iloc[0]
    assert np.isnan(row["score_reverse"]) and row["score"] == row["score_forward"]


def test_embedding_distance_matches_pooled_hidden_states(fasta):
    model = make(GenoLongForCausalLM, FAMILIES["mlstm"])
    pos = 11000
    ref = fasta.fetch(CONTIG, pos - 10, pos + 11).upper()
    alt = ref[:10] + ("G" if ref[10] != "G" else "T") + ref[11:]
    with VariantScorer(model, TOKENIZER, fasta, method="embedding", window=21, rc_average=False) as scorer:
        row = scorer.score([Variant(CONTIG, pos, ref[10], alt[10])], progress=False).iloc[0]

    def pooled(seq):
        with torch.no_grad():
            return model.model(input_ids=encode(seq)).last_hidden_state[0].double().mean(0)

    a, b = pooled(ref), pooled(alt)
    assert row["score"] == pytest.approx(float(1 - torch.cosine_similarity(a, b, dim=0)), abs=1e-5)
    assert row["l2_distance"] == pytest.approx(float((a - b).norm()), rel=1e-4)


def test_methods_that_do_not_fit_the_model_are_refused(fasta):
    causal = make(GenoLongForCausalLM, FAMILIES["hyena"])
    with pytest.raises(UsageError, match="masked language model"):
        VariantScorer(causal, TOKENIZER, fasta, method="masked_marginal")
    masked = make(GenoLongForMaskedLM, FAMILIES["hyena"], bidirectional=True)
    with pytest.raises(UsageError, match="upstream"):
        VariantScorer(masked, TOKENIZER, fasta, window_mode="upstream")


def test_windows_leave_room_in_the_context_for_the_tokenizers_bos_and_eos(fasta):
    tokenizer = NucleotideTokenizer(special_tokens_pattern="bos_eos")
    torch.manual_seed(0)
    model = GenoLongForCausalLM(tiny_config(FAMILIES["hyena"], **model_config_fields(tokenizer), max_position=64))
    with VariantScorer(model.eval(), tokenizer, fasta) as scorer:
        assert scorer.window == 62  # 62 bases + BOS + EOS = the context (64 bases + 2 would be refused by the model)
        table = scorer.score_vcf(VCF, progress=False)
    scored = table[table.status == "scored"]
    assert len(scored) >= 10 and np.isfinite(scored.score).all()
    with pytest.raises(UsageError, match="between 2 and 62 bases .*64 tokens less the 2 special tokens"):
        VariantScorer(model, tokenizer, fasta, window=63)


def test_a_strand_that_would_be_scored_by_its_eos_alone_is_not_scored(fasta):
    """Upstream windows at the contig start: the forward one is the allele and the EOS, so llr would only measure
    P(EOS | allele); that strand is left out, as it is for tokenizers without an EOS."""
    ref = fasta.fetch(CONTIG, 0, 1).upper()
    at_start = Variant(CONTIG, 0, ref, "A" if ref != "A" else "C")
    for pattern in ("none", "eos", "bos_eos"):
        tokenizer = NucleotideTokenizer(special_tokens_pattern=pattern)
        torch.manual_seed(0)
        model = GenoLongForCausalLM(tiny_config(FAMILIES["hyena"], **model_config_fields(tokenizer), max_position=64))
        with VariantScorer(model.eval(), tokenizer, fasta, window=32, window_mode="upstream") as scorer:
            row = scorer.score([at_start], progress=False).iloc[0]
        assert row["status"] == "scored" and np.isfinite(row["score_reverse"]), pattern
        if pattern == "bos_eos":  # the allele itself is predicted (from the BOS alone): a measurement
            assert row["score"] == pytest.approx((row["score_forward"] + row["score_reverse"]) / 2)
        else:
            assert np.isnan(row["score_forward"]) and row["score"] == row["score_reverse"], pattern


def window_log_prob(model, ids: np.ndarray) -> float:
    """log P(all tokens after the first) of one token row, one full forward pass, float64."""
    row = torch.as_tensor(ids, dtype=torch.long)[None]
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=row).logits.double(), dim=-1)[0]
    return float(logp[:-1].gather(-1, row[0, 1:, None]).sum())


@pytest.mark.parametrize("spec", ["kmer:3", "kmer:4:2"])
@pytest.mark.parametrize("reuse", [False, True])
def test_kmer_models_score_the_likelihood_ratio_of_their_token_windows(spec, reuse, fasta):
    """llr of a k-mer model = log P(alt window) - log P(ref window) over all its tokens, each window tokenized
    whole (an SNV, a deletion, an insertion; stride = k and overlapping k-mers)."""
    tokenizer = build_tokenizer(spec)
    torch.manual_seed(2)
    model = GenoLongForCausalLM(tiny_config(FAMILIES["hybrid"], **model_config_fields(tokenizer),
                                            max_position=128)).eval()  # fmt: skip
    pos, window = 9000, 61
    ref3 = fasta.fetch(CONTIG, pos, pos + 3).upper()
    variants = [Variant(CONTIG, pos, ref3[0], "A" if ref3[0] != "A" else "G"), Variant(CONTIG, pos, ref3, ref3[0]),
                Variant(CONTIG, pos, ref3[0], ref3[0] + "TTG")]  # fmt: skip
    with VariantScorer(model, tokenizer, fasta, window=window, reuse_prefix=reuse, rc_average=False) as scorer:
        table = scorer.score(variants, progress=False)
    assert (table["status"] == "scored").all()
    for variant, (_, row) in zip(variants, table.iterrows(), strict=True):
        start, end = int(row["window_start"]), int(row["window_end"])
        ref = fasta.fetch(CONTIG, start, end).upper()
        alt = ref[: pos - start] + variant.alt + ref[pos - start + len(variant.ref) :]
        expected = window_log_prob(model, tokenizer.encode(alt)) - window_log_prob(model, tokenizer.encode(ref))
        assert row["score"] == pytest.approx(expected, abs=2e-4), variant


def test_codon_models_score_variants_in_the_frames_of_the_annotation(fasta, ecoli_gff):
    """A codon model's windows carry their CDS: the ref window as annotated, the alt window with the variant
    applied to the segments (an insertion inside a CDS lengthens it); both strands, with and without prefix
    reuse, against windows encoded here from the annotation."""
    from genolong.data.annotation import CdsAnnotation, flip
    from genolong.tokenizers.cds import CdsSegment

    codon = build_tokenizer("codon")
    torch.manual_seed(3)
    model = GenoLongForCausalLM(tiny_config(FAMILIES["hyena"], **model_config_fields(codon),
                                            max_position=128)).eval()  # fmt: skip
    frames = CdsAnnotation(ecoli_gff, fasta.lengths)
    genes = [s for s in frames.segments(CONTIG, 0, 60000) if s.end - s.start > 300][:2]
    window = 61
    variants = []
    for gene in genes:
        pos = gene.start + 150  # well inside the CDS
        base = fasta.fetch(CONTIG, pos, pos + 1).upper()
        variants += [Variant(CONTIG, pos, base, "T" if base != "T" else "C"), Variant(CONTIG, pos, base, base + "AC")]
    scores = {}
    for reuse in (False, True):
        with VariantScorer(model, codon, fasta, window=window, annotation=ecoli_gff, reuse_prefix=reuse) as scorer:
            scores[reuse] = scorer.score(variants, progress=False)
    np.testing.assert_allclose(scores[True]["score"], scores[False]["score"], atol=2e-4)
    table = scores[True]
    assert (table["status"] == "scored").all()
    for variant, (_, row) in zip(variants, table.iterrows(), strict=True):
        start, end = int(row["window_start"]), int(row["window_end"])
        ref = fasta.fetch(CONTIG, start, end).upper()
        site = variant.pos - start
        alt = ref[:site] + variant.alt + ref[site + 1 :]
        ref_cds = frames.segments(CONTIG, start, end)
        grow = len(variant.alt) - 1  # the gene holds the whole window: its end moves by the inserted bases
        assert len(ref_cds) == 1 and ref_cds[0].start < site and ref_cds[0].end > site + 1
        alt_cds = [CdsSegment(s.start, s.end + grow, s.strand, s.phase) for s in ref_cds]
        ref_ids, alt_ids = codon.encode(ref, cds=ref_cds), codon.encode(alt, cds=alt_cds)
        assert len(ref_ids) < len(ref)  # read as codons
        forward = window_log_prob(model, alt_ids) - window_log_prob(model, ref_ids)
        rc = reverse_complement
        reverse = window_log_prob(model, codon.encode(rc(alt), cds=flip(alt_cds, len(alt)))) - window_log_prob(
            model, codon.encode(rc(ref), cds=flip(ref_cds, len(ref))))  # fmt: skip
        assert row["score_forward"] == pytest.approx(forward, abs=2e-4), variant
        assert row["score_reverse"] == pytest.approx(reverse, abs=2e-4), variant


def test_codon_models_are_scored_with_llr_only_and_annotations_only_serve_codon_models(fasta, ecoli_gff):
    codon = build_tokenizer("codon")
    causal = GenoLongForCausalLM(tiny_config(FAMILIES["hyena"], **model_config_fields(codon))).eval()
    with pytest.raises(UsageError, match="codon models score variants with llr only"):
        VariantScorer(causal, codon, fasta, method="embedding", annotation=ecoli_gff)
    plain = make(GenoLongForCausalLM, FAMILIES["hyena"])
    with pytest.raises(UsageError, match="does not use one"):
        VariantScorer(plain, TOKENIZER, fasta, annotation=ecoli_gff)


def test_codon_windows_whose_n_codons_overrun_the_context_are_skipped_not_fatal(tmp_path):
    # a codon holding an N is 4 tokens ([UNK_CODON] and its bases): 64 bases of them are more than 64 tokens
    codon = build_tokenizer("codon")
    torch.manual_seed(0)
    model = GenoLongForCausalLM(tiny_config(FAMILIES["hyena"], **model_config_fields(codon), max_position=64))
    rng = np.random.default_rng(0)
    clean = "".join(rng.choice(list("ACGT"), 300))
    (tmp_path / "n.fa").write_text(f">gappy\n{'NAA' * 100}\n>clean\n{clean}\n")
    (tmp_path / "n.gff3").write_text("##gff-version 3\n" + "".join(f"{c}\tt\tCDS\t1\t300\t.\t+\t0\tID={c}\n"
                                                                  for c in ("gappy", "clean")))  # fmt: skip
    variants = [Variant("gappy", 151, "A", "G"), Variant("clean", 151, clean[151], "T" if clean[151] != "T" else "C")]
    with VariantScorer(model.eval(), codon, tmp_path / "n.fa", annotation=tmp_path / "n.gff3") as scorer:
        table = scorer.score(variants, progress=False)
    assert table["status"].tolist() == ["tokens_exceed_context", "scored"]
    assert np.isfinite(table["score"][1])


@pytest.mark.parametrize(
    ("pos", "ref", "alt", "segment", "alt_segment"),
    [
        (100, "C", "G", (90, 120), (90, 120)),  # SNV: the frame as annotated
        (100, "C", "CAT", (90, 120), (90, 122)),  # insertion inside: the segment grows (frameshift after it)
        (100, "C", "CAT", (90, 101), (90, 101)),  # after the segment's last base: outside it
        (100, "C", "CAT", (101, 130), (103, 132)),  # before the segment's first base: outside it, moved
        (100, "CGTA", "C", (102, 130), (101, 127)),  # deletion of the segment's first bases: it starts after
        (100, "CGTACG", "C", (102, 105), None),  # deletion of a whole segment: gone
        (0, "TTA", "A", (2, 30), (0, 28)),  # right-anchored deletion at the contig start
    ],
)
@pytest.mark.parametrize("strand", ["+", "-"])
def test_alt_windows_carry_the_cds_with_the_variant_applied(tmp_path, pos, ref, alt, segment, alt_segment, strand):
    from genolong.data.annotation import CdsAnnotation
    from genolong.pipelines.variant_windows import variant_windows, with_cds
    from genolong.tokenizers.cds import CdsSegment

    rng = np.random.default_rng(0)
    seq = list(rng.choice(list("ACGT"), 200))
    seq[pos : pos + len(ref)] = ref
    (tmp_path / "t.fa").write_text(">chrT\n" + "".join(seq) + "\n")
    (tmp_path / "t.gff3").write_text(f"##gff-version 3\nchrT\tt\tCDS\t{segment[0] + 1}\t{segment[1]}\t.\t{strand}\t0"
                                     "\tID=c0\n")  # fmt: skip
    with Fasta(tmp_path / "t.fa") as genome:
        frames = CdsAnnotation(tmp_path / "t.gff3", genome.lengths)
        variant = Variant("chrT", pos, ref, alt)
        found = with_cds(variant_windows(variant, genome, 81), variant, frames)
    start = found.start
    assert found.forward.ref_cds == (CdsSegment(segment[0] - start, segment[1] - start, strand),)
    expected = () if alt_segment is None else (CdsSegment(alt_segment[0] - start, alt_segment[1] - start, strand),)
    assert found.forward.alt_cds == expected
    # the reverse windows carry the same segments, mirrored in each window's own length
    n_ref, n_alt = len(found.forward.ref), len(found.forward.alt)
    assert [(n_ref - s.end, n_ref - s.start) for s in found.reverse.ref_cds] == [(s.start, s.end) for s in
                                                                                found.forward.ref_cds]  # fmt: skip
    assert [(n_alt - s.end, n_alt - s.start) for s in found.reverse.alt_cds] == [(s.start, s.end) for s in expected]


@pytest.mark.parametrize("spec", ["kmer:3", "kmer:6:1"])
def test_masked_kmer_models_mask_every_kmer_holding_the_changed_base(spec, fasta):
    tokenizer = build_tokenizer(spec)
    torch.manual_seed(4)
    model = GenoLongForMaskedLM(tiny_config(FAMILIES["mamba2"], **model_config_fields(tokenizer),
                                            bidirectional=True, max_position=128)).eval()  # fmt: skip
    pos, window = 7000, 41
    base = fasta.fetch(CONTIG, pos, pos + 1).upper()
    alt_base = "T" if base != "T" else "C"
    with VariantScorer(model, tokenizer, fasta, window=window, rc_average=False) as scorer:
        row = scorer.score([Variant(CONTIG, pos, base, alt_base)], progress=False).iloc[0]
    ref = fasta.fetch(CONTIG, int(row["window_start"]), int(row["window_end"])).upper()
    site = pos - int(row["window_start"])
    ref_ids = torch.as_tensor(tokenizer.encode(ref), dtype=torch.long)
    alt_ids = torch.as_tensor(tokenizer.encode(ref[:site] + alt_base + ref[site + 1 :]), dtype=torch.long)
    changed = torch.nonzero(ref_ids != alt_ids)[:, 0]
    k, stride = (3, 3) if spec == "kmer:3" else (6, 1)
    assert len(changed) == k // stride  # every k-mer holding the base
    masked = ref_ids.clone()
    masked[changed] = tokenizer.mask_token_id
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=masked[None]).logits.double(), dim=-1)[0]
    expected = sum(float(logp[t, alt_ids[t]] - logp[t, ref_ids[t]]) for t in changed)
    assert row["score"] == pytest.approx(expected, abs=1e-4)


def test_target_names_a_class_before_it_indexes_one():
    from genolong.pipelines.variant_effect import _target_index

    assert _target_index(1, ["1", "2", "3"]) == 0  # classes named by numbers: --target 1 is the class "1"
    assert _target_index(np.int64(2), ["neg", "mid", "pos"]) == 2 and _target_index(None, ["neg", "pos"]) == 1
    assert _target_index("pos", ["neg", "pos"]) == 1
    with pytest.raises(UsageError, match="outputs"):
        _target_index(5, ["neg", "pos"])
