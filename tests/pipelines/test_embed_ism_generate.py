"""embed, ism and generate: each against an independent computation with the model, and through the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from genolong.data.annotation import CdsAnnotation
from genolong.errors import ResourceLimitError, UsageError
from genolong.io.alleles import Variant
from genolong.io.fasta import Fasta
from genolong.models import GenoLongForCausalLM, GenoLongForMaskedLM
from genolong.pipelines.embed import embed_sequences
from genolong.pipelines.generate import generate_sequences
from genolong.pipelines.ism import saturation_mutagenesis
from genolong.pipelines.variant_effect import VariantScorer
from genolong.tokenizers.factory import build_tokenizer, model_config_fields
from genolong.tokenizers.nucleotide import NucleotideTokenizer
from tests.conftest import DATA, REPO, run_cli
from tests.models.helpers import tiny_config

FASTA = DATA / "ecoli_200k.fa"
CONTIG = "MIIJ01000039.1"
TOKENIZER = build_tokenizer("nucleotide")


def make(mixers: str, model_class=GenoLongForCausalLM, **overrides):
    torch.manual_seed(0)
    return model_class(tiny_config(mixers, **model_config_fields(TOKENIZER), **overrides)).eval()


@pytest.fixture(scope="module")
def genome():
    with Fasta(FASTA) as fasta:
        yield fasta


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    model, out = make("(mamba2,attention)", max_position=128), tmp_path_factory.mktemp("model")
    model.save_pretrained(out)
    TOKENIZER.save_pretrained(out)
    return out


def hidden(model, seq: str) -> torch.Tensor:
    with torch.no_grad():
        ids = torch.as_tensor(TOKENIZER.encode(seq), dtype=torch.long)[None]
        return model.model(input_ids=ids).last_hidden_state[0].double()  # (L, D)


def test_pooled_and_per_position_embeddings_are_the_hidden_states(genome):
    model = make("hyena*2")
    seqs = [genome.fetch(CONTIG, 1000, 1040).upper(), genome.fetch(CONTIG, 5000, 5013).upper()]
    mean = embed_sequences(model, TOKENIZER, seqs, pooling="mean", batch_size=2)  # padded together
    last = embed_sequences(model, TOKENIZER, seqs, pooling="last")
    each = embed_sequences(model, TOKENIZER, seqs, pooling="none")
    for i, seq in enumerate(seqs):
        h = hidden(model, seq)
        np.testing.assert_allclose(mean[i], h.mean(0), atol=1e-5)
        np.testing.assert_allclose(last[i], h[-1], atol=1e-5)
        np.testing.assert_allclose(each[i], h, atol=1e-5)
    assert mean.shape == (2, model.config.d_model) and mean.dtype == np.float32


def test_long_sequences_by_state_are_exact_and_by_windows_take_central_positions(genome):
    seq = genome.fetch(CONTIG, 2000, 2150).upper()
    recurrent = make("(mamba2,mlstm)", max_position=64)
    pieces = embed_sequences(recurrent, TOKENIZER, [seq], pooling="none")[0]  # 150 bases, pieces of 64
    np.testing.assert_allclose(pieces, hidden(recurrent, seq), atol=1e-4)
    hyena = make("hyena*2", max_position=64)
    windows = embed_sequences(hyena, TOKENIZER, [seq], pooling="none")[0]
    assert windows.shape == (150, hyena.config.d_model)
    np.testing.assert_allclose(windows[:48], hidden(hyena, seq[:64])[:48], atol=1e-5)  # first window's part
    np.testing.assert_allclose(windows[-16:], hidden(hyena, seq[-64:])[-16:], atol=1e-5)  # the last window's
    np.testing.assert_allclose(windows[48:80], hidden(hyena, seq[32:96])[16:48], atol=1e-5)  # central quarter
    for model, per_position in ((recurrent, pieces), (hyena, windows)):  # pooled piece by piece, not all kept
        mean = embed_sequences(model, TOKENIZER, [seq], pooling="mean")[0]
        last = embed_sequences(model, TOKENIZER, [seq], pooling="last")[0]
        np.testing.assert_allclose(mean, per_position.mean(0), atol=1e-5)
        np.testing.assert_allclose(last, per_position[-1], atol=1e-6)
    odd = embed_sequences(hyena, TOKENIZER, [seq], pooling="none", chunk=30)[0]  # 30 // 4: windows overlap more
    assert odd.shape == (150, hyena.config.d_model)
    np.testing.assert_allclose(odd[-7:], hidden(hyena, seq[-30:])[-7:], atol=1e-5)


def test_codon_models_embed_the_codons_of_the_annotation(genome, ecoli_gff, tmp_path):
    codon = build_tokenizer("codon")
    torch.manual_seed(0)
    model = GenoLongForCausalLM(tiny_config("mamba2*2", **model_config_fields(codon), max_position=128)).eval()
    frames = CdsAnnotation(ecoli_gff, genome.lengths)
    genes = [g for g in frames.segments(CONTIG, 0, 60_000) if g.end - g.start > 1600][:2]
    # 300 bases of a gene (~100 codons, one batched pass); 1500 bases (~500 codons, read in pieces of 128)
    spans = [(genes[0].start, genes[0].start + 300), (genes[1].start, genes[1].start + 1500)]
    seqs = [genome.fetch(CONTIG, a, b).upper() for a, b in spans]
    cds = [frames.segments(CONTIG, a, b) for a, b in spans]
    each = embed_sequences(model, codon, seqs, pooling="none", cds=cds)
    for seq, segments, states in zip(seqs, cds, each, strict=True):
        ids = torch.as_tensor(codon.encode(seq, cds=segments), dtype=torch.long)[None]
        with torch.no_grad():  # one pass over the codon tokens
            np.testing.assert_allclose(states, model.model(input_ids=ids).last_hidden_state[0], atol=1e-4)
    assert len(each[0]) <= 128 < len(each[1]) < 1500 - 600  # positions are codons where the annotation has CDS
    with pytest.raises(UsageError, match="cds has 1 entries for 2 sequences"):
        embed_sequences(model, codon, seqs, cds=cds[:1])
    with pytest.raises(UsageError, match="does not use them"):
        embed_sequences(make("mamba2"), TOKENIZER, seqs, cds=cds)

    model_dir, out, bed = tmp_path / "codon", tmp_path / "codon.npz", tmp_path / "genes.bed"
    model.save_pretrained(model_dir)
    codon.save_pretrained(model_dir)
    bed.write_text("".join(f"{CONTIG}\t{a}\t{b}\tregion{i}\n" for i, (a, b) in enumerate(spans)))
    common = ["embed", "--model", model_dir, "--fasta", FASTA, "--bed", bed, "--pooling", "none", "--output", out]
    ok = run_cli(*common, "--annotation", ecoli_gff, cwd=REPO)
    assert ok.returncode == 0, ok.stderr[-2000:]
    with np.load(out) as saved:
        for i, states in enumerate(each):
            np.testing.assert_allclose(saved[f"region{i}"], states, atol=1e-5)
    refused = run_cli(*common, cwd=REPO)  # no annotation given, and none recorded by training
    assert refused.returncode == 2 and "none was given" in refused.stderr


def test_sequences_as_long_as_the_context_leave_room_for_bos_and_eos():
    tokenizer = NucleotideTokenizer(special_tokens_pattern="bos_eos")
    torch.manual_seed(0)
    model = GenoLongForCausalLM(tiny_config("hyena*2", **model_config_fields(tokenizer), max_position=64)).eval()
    seq = "ACGTTGCA" * 8  # 64 bases: 66 tokens, more than the context, read as overlapping windows
    full, fits = embed_sequences(model, tokenizer, [seq, seq[:62]], pooling="none")
    with torch.no_grad():
        ids = torch.as_tensor(tokenizer.encode(seq[:62]), dtype=torch.long)[None]  # (1, 64): one pass
        np.testing.assert_allclose(fits, model.model(input_ids=ids).last_hidden_state[0], atol=1e-5)
        ids = torch.as_tensor(tokenizer.encode(seq), dtype=torch.long)[None]  # (1, 66): windows at 0 and 2
        first, last = (model.model(input_ids=ids[:, a : a + 64]).last_hidden_state[0] for a in (0, 2))
    assert full.shape == (66, model.config.d_model)
    np.testing.assert_allclose(full[:18], first[:18], atol=1e-5)  # the second window takes over a quarter in
    np.testing.assert_allclose(full[18:], last[16:], atol=1e-5)


def test_cli_embed_records_and_bed_regions(model_dir, tmp_path):
    bed = tmp_path / "regions.bed"
    bed.write_text(f"{CONTIG}\t100\t160\tfirst\n{CONTIG}\t5000\t5090\t.\n")
    common = ["embed", "--model", model_dir, "--fasta", FASTA, "--bed", bed]
    ok = run_cli(*common, "--output", tmp_path / "e.npy", cwd=REPO)
    assert ok.returncode == 0, ok.stderr[-2000:]
    vectors = np.load(tmp_path / "e.npy")
    assert vectors.shape == (2, 32) and np.isfinite(vectors).all()
    assert (tmp_path / "e.npy.ids.txt").read_text().split() == ["first", f"{CONTIG}:5001-5090"]
    parquet = run_cli(*common, "--output", tmp_path / "p.parquet", "--pooling", "none", cwd=REPO)
    assert parquet.returncode == 0, parquet.stderr[-2000:]
    table = pd.read_parquet(tmp_path / "p.parquet")
    assert len(table) == 60 + 90 and table.groupby("id")["position"].max().to_dict()["first"] == 59
    bad = run_cli(*common, "--output", tmp_path / "e.csv", cwd=REPO)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_ism_scores_every_other_base_like_the_variant_scorer(tmp_path):
    seq = "ACGTN" + "GATTACA" * 3
    fasta = tmp_path / "small.fa"
    fasta.write_text(">small\n" + seq + "\n")
    model = make("hyena*2", max_position=64)
    with VariantScorer(model, TOKENIZER, fasta, window=21) as scorer:
        table = saturation_mutagenesis(scorer, "small:1-12", progress=False)
        direct = scorer.score([Variant("small", 1, "C", "T")], progress=False)
    assert len(table) == 3 * 11 and table.attrs["not_mutated"] == 1 and 5 not in set(table["position"])
    assert table.groupby("position")["alt"].apply(lambda a: "".join(sorted(a))).to_dict()[2] == "AGT"
    row = table[(table["position"] == 2) & (table["alt"] == "T")].iloc[0]
    assert row["score"] == pytest.approx(direct["score"][0], abs=1e-4)  # batched differently: float32 sums


def test_cli_ism_table_heatmap_and_region_limit(model_dir, tmp_path):
    common = ["ism", "--model", model_dir, "--fasta", FASTA, "--window", "33"]
    ok = run_cli(*common, "--region", f"{CONTIG}:1001-1030", "--output", tmp_path / "t.tsv",
                 "--heatmap", tmp_path / "h.png", cwd=REPO)  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-2000:]
    table = pd.read_csv(tmp_path / "t.tsv", sep="\t")
    assert len(table) == 90 and set(table["position"]) == set(range(1001, 1031)) and table["score"].notna().all()
    png = (tmp_path / "h.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    import matplotlib.image

    assert matplotlib.image.imread(tmp_path / "h.png").shape[1] > 600  # a readable width
    too_long = run_cli(*common, "--region", f"{CONTIG}:1-5000", "--output", tmp_path / "x.tsv", cwd=REPO)
    assert too_long.returncode == 2 and "limited" in too_long.stderr
    region = ["--region", f"{CONTIG}:1001-1030"]
    for bad, named in ((["--output", tmp_path / "t.csv"], "t.csv"),
                       (["--output", tmp_path / "t.tsv", "--heatmap", tmp_path / "h.jpg"], "h.jpg")):  # fmt: skip
        refused = run_cli(*common, *region, *bad, cwd=REPO)
        assert refused.returncode == 2 and named in refused.stderr and ".vcf" not in refused.stderr


def test_generation_is_seeded_bases_only_and_greedy_at_top_k_1():
    model = make("(mamba2,attention)", max_position=128)
    prompt = "ACGTTGCAAC"
    first = generate_sequences(model, TOKENIZER, prompt, length=40, num_samples=3, seed=5, temperature=1.5)
    again = generate_sequences(model, TOKENIZER, prompt, length=40, num_samples=2, seed=5, temperature=1.5)
    assert first[:2] == again and len(set(first)) == 3
    assert all(len(s) == 40 and set(s) <= set("ACGT") for s in first)
    greedy = generate_sequences(model, TOKENIZER, prompt, length=12, top_k=1, seed=9)
    seq, bases = prompt, TOKENIZER.convert_tokens_to_ids(list("ACGT"))
    for _ in range(12):  # the most probable of A/C/G/T after the sequence so far, from full forward passes
        with torch.no_grad():
            logits = model(input_ids=torch.as_tensor(TOKENIZER.encode(seq), dtype=torch.long)[None]).logits[0, -1]
        seq += "ACGT"[int(logits[bases].argmax())]
    assert greedy == [seq[len(prompt) :]]
    assert generate_sequences(model, TOKENIZER, prompt, length=12, temperature=0) == greedy


@pytest.mark.parametrize("pattern", ["bos", "eos", "bos_eos"])
def test_generation_starts_sequences_as_the_tokenizer_does_and_never_after_an_eos(pattern):
    tokenizer = NucleotideTokenizer(special_tokens_pattern=pattern)
    torch.manual_seed(0)
    model = GenoLongForCausalLM(tiny_config("(mamba2,attention)", **model_config_fields(tokenizer), max_position=16))
    model.eval()
    prompt, bases = "ACGTTG", tokenizer.convert_tokens_to_ids(list("ACGT"))
    seq = [tokenizer.bos_token_id] if "bos" in pattern else []
    seq += [int(i) for i in tokenizer.encode(prompt, add_special_tokens=False)]
    for _ in range(4):  # greedy from full passes over the prompt as training began it (BOS), no EOS after it
        with torch.no_grad():
            logits = model(input_ids=torch.tensor(seq)[None]).logits[0, -1]
        seq.append(bases[int(logits[bases].argmax())])
    assert generate_sequences(model, tokenizer, prompt, length=4, temperature=0) == [tokenizer.decode(seq[-4:])]
    fits = 16 - len(prompt) - ("bos" in pattern)  # the BOS takes a position of the context, a dropped EOS none
    assert len(generate_sequences(model, tokenizer, prompt, length=fits)[0]) == fits
    with pytest.raises(ResourceLimitError, match="context of 16"):
        generate_sequences(model, tokenizer, prompt, length=fits + 1)


def test_cli_generate_writes_fasta(model_dir, tmp_path):
    out = tmp_path / "samples.fa"
    ok = run_cli("generate", "--model", model_dir, "--fasta", FASTA, "--region", f"{CONTIG}:1001-1030",
                 "--length", "90", "--num_samples", "2", "--top_k", "3", "--output", out, cwd=REPO)  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-2000:]
    with Fasta(out) as samples:
        assert samples.names == ("sample_1", "sample_2")
        assert all(samples.lengths[n] == 90 and set(samples.fetch(n)) <= set("ACGT") for n in samples.names)
    too_long = run_cli("generate", "--model", model_dir, "--prompt", "ACGT" * 8, "--length", "100", "--output", out,
                       cwd=REPO)  # fmt: skip
    assert too_long.returncode == 6 and "context of 128" in too_long.stderr
    both = run_cli("generate", "--model", model_dir, "--prompt", "ACGT", "--region", "x:1-2", "--length", "5",
                   "--output", out, cwd=REPO)  # fmt: skip
    assert both.returncode == 2 and "Traceback" not in both.stderr


def test_generation_refuses_multi_base_tokens_and_seeds_torch_cannot_take():
    kmer = build_tokenizer("kmer:3")
    torch.manual_seed(0)
    model = GenoLongForCausalLM(tiny_config("mamba2", **model_config_fields(kmer))).eval()
    with pytest.raises(UsageError, match="samples single bases"):
        generate_sequences(model, kmer, "ACGTACGT", length=6)
    codon = build_tokenizer("codon")  # single bases outside CDS: they would pass the check above
    codon_model = GenoLongForCausalLM(tiny_config("mamba2", **model_config_fields(codon))).eval()
    with pytest.raises(UsageError, match="generation gives the model no CDS annotation"):
        generate_sequences(codon_model, codon, "ACGTACGT", length=6)
    plain = make("mamba2", max_position=128)
    for seed in (-1, 2**63 - 2, 10**20):
        with pytest.raises(UsageError, match="seed must be in"):
            generate_sequences(plain, TOKENIZER, "ACGT", length=3, num_samples=2, seed=seed)
    assert len(generate_sequences(plain, TOKENIZER, "ACGT", length=3, seed=2**63 - 2)[0]) == 3


def test_cli_generate_names_greedy_decoding_and_the_model_it_refuses(model_dir, tmp_path):
    out = tmp_path / "greedy.fa"
    ok = run_cli("generate", "--model", model_dir, "--prompt", "ACGTACGT", "--length", "5", "--temperature", "0",
                 "--output", out, cwd=REPO)  # fmt: skip
    assert ok.returncode == 0 and out.read_text().splitlines()[0] == ">sample_1 prompt=8-base sequence greedy seed=0"
    masked_dir = tmp_path / "masked"
    make("mamba2*2", GenoLongForMaskedLM, bidirectional=True).save_pretrained(masked_dir)
    TOKENIZER.save_pretrained(masked_dir)
    refused = run_cli("generate", "--model", masked_dir, "--prompt", "ACGT", "--length", "5", "--output", out,
                      cwd=REPO)  # fmt: skip
    assert refused.returncode == 2 and str(masked_dir) in refused.stderr


def test_masked_models_embed_but_do_not_generate():
    masked = make("mamba2*2", GenoLongForMaskedLM, bidirectional=True)
    assert embed_sequences(masked, TOKENIZER, ["ACGTACGT"]).shape == (1, 32)
    with pytest.raises(UsageError, match="causal language model"):
        generate_sequences(masked, TOKENIZER, "ACGT", length=3)


def test_cli_embed_takes_one_record_name_or_a_comma_separated_list(model_dir, tmp_path):
    common = ["embed", "--model", model_dir, "--fasta", FASTA, "--output", tmp_path / "e.npy"]
    one = run_cli(*common, "--records", CONTIG, cwd=REPO)  # the README's form
    assert one.returncode == 0, one.stderr[-2000:]
    assert (tmp_path / "e.npy.ids.txt").read_text().split() == [CONTIG]
    listed = run_cli(*common, "--records", f"{CONTIG},{CONTIG}", cwd=REPO)  # pooled rows: repeats allowed
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert np.load(tmp_path / "e.npy").shape == (2, 32)


def test_cli_embed_refuses_repeated_ids_and_bad_pooling_before_any_work(model_dir, tmp_path):
    bed = tmp_path / "genes.bed"
    bed.write_text(f"{CONTIG}\t100\t160\tgeneA\n{CONTIG}\t200\t260\tgeneA\n{CONTIG}\t300\t360\tgeneB\n")
    common = ["embed", "--model", model_dir, "--fasta", FASTA, "--bed", bed]
    repeated = run_cli(*common, "--pooling", "none", "--output", tmp_path / "e.npz", cwd=REPO)
    assert repeated.returncode == 2 and "Traceback" not in repeated.stderr
    assert f"{bed}:2: id 'geneA' is repeated (first on line 1)" in repeated.stderr
    assert not (tmp_path / "e.npz").exists() and "embedding:" not in repeated.stderr  # no progress bar: refused first
    npy = run_cli(*common, "--pooling", "none", "--output", tmp_path / "e.npy", cwd=REPO)
    assert npy.returncode == 2 and "per-position" in npy.stderr and "embedding:" not in npy.stderr
    pooled = run_cli(*common, "--output", tmp_path / "p.parquet", cwd=REPO)  # one row per region, in order
    assert pooled.returncode == 0, pooled.stderr[-2000:]
    assert pd.read_parquet(tmp_path / "p.parquet")["id"].tolist() == ["geneA", "geneA", "geneB"]


def test_cli_embed_skips_and_counts_empty_sequences(model_dir, tmp_path):
    bed = tmp_path / "regions.bed"
    bed.write_text(f"{CONTIG}\t100\t160\tfirst\n{CONTIG}\t100\t100\tzero\n")
    ok = run_cli("embed", "--model", model_dir, "--fasta", FASTA, "--bed", bed, "--output", tmp_path / "e.npy",
                 cwd=REPO)  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "1 sequences" in ok.stdout and "1 empty skipped" in ok.stdout and "zero" in ok.stderr
    vectors = np.load(tmp_path / "e.npy")
    assert vectors.shape == (1, 32) and np.isfinite(vectors).all()
    assert (tmp_path / "e.npy.ids.txt").read_text().split() == ["first"]
    with pytest.raises(UsageError, match="sequence 1 .* is empty"):
        embed_sequences(make("hyena*2"), TOKENIZER, ["ACGT", ""])


def test_cli_embed_refuses_to_write_non_finite_embeddings(tmp_path):
    model = make("hyena*2", max_position=64)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    model.save_pretrained(tmp_path / "nan_model")
    TOKENIZER.save_pretrained(tmp_path / "nan_model")
    out = run_cli("embed", "--model", tmp_path / "nan_model", "--fasta", FASTA, "--records", CONTIG, "--chunk", "64",
                  "--output", tmp_path / "e.npy", cwd=REPO)  # fmt: skip
    assert out.returncode == 7 and f"embedding of '{CONTIG}' is not finite" in out.stderr
    assert not (tmp_path / "e.npy").exists()


def test_ism_and_evaluate_refuse_regions_with_nothing_to_score(model_dir, tmp_path):
    from genolong.errors import InconsistentDataError
    from genolong.pipelines.evaluate import evaluate_language_model

    fasta = tmp_path / "odd.fa"
    fasta.write_text(">empty\n\n>unknown\n" + "N" * 40 + "\n>real\nACGTACGTTGCA\n")
    with VariantScorer(make("hyena*2", max_position=64), TOKENIZER, fasta, window=21) as scorer:
        for region, message in (("empty", "region empty is empty"), ("unknown:1-10", "no A/C/G/T base")):
            with pytest.raises(InconsistentDataError, match=message):
                saturation_mutagenesis(scorer, region, progress=False)
    for regions in (["empty"], ["real", "real:3-3"]):
        with pytest.raises(InconsistentDataError, match="at least 2 are needed"):
            evaluate_language_model(model_dir, fasta, regions, train_regions=["real"], length=8)
    heatmap = run_cli("ism", "--model", model_dir, "--fasta", fasta, "--region", "unknown", "--output",
                      tmp_path / "t.tsv", "--heatmap", tmp_path / "h.png", cwd=REPO)  # fmt: skip
    assert heatmap.returncode == 5 and "region unknown has no A/C/G/T" in heatmap.stderr
    assert not (tmp_path / "t.tsv").exists()


def test_cli_refuses_an_output_that_is_one_of_its_inputs_or_not_fasta_before_any_work(model_dir, tmp_path):
    fasta, vcf = tmp_path / "ref.fa", tmp_path / "calls.vcf.gz"
    fasta.write_bytes(FASTA.read_bytes())
    vcf.write_bytes((DATA / "ecoli_200k.variants.vcf.gz").read_bytes())
    before = fasta.read_bytes(), vcf.read_bytes()
    over_reference = run_cli("generate", "--model", model_dir, "--fasta", fasta, "--region", f"{CONTIG}:1-20",
                             "--length", "5", "--output", fasta, cwd=REPO)  # fmt: skip
    over_calls = run_cli("score-variants", "--model", model_dir, "--fasta", fasta, "--vcf", vcf, "--output",
                         tmp_path / "." / "calls.vcf.gz", cwd=REPO)  # fmt: skip
    for refused in (over_reference, over_calls):
        assert refused.returncode == 2 and "one of the input files" in refused.stderr, refused.stderr[-2000:]
    assert (fasta.read_bytes(), vcf.read_bytes()) == before
    gzipped = run_cli("generate", "--model", model_dir, "--prompt", "ACGT", "--length", "4", "--output",
                      tmp_path / "g.fa.gz", cwd=REPO)  # fmt: skip
    assert gzipped.returncode == 2 and ".fa, .fasta, .fna" in gzipped.stderr and not (tmp_path / "g.fa.gz").exists()


@pytest.mark.parametrize("batch_size", ["0", "-1"])
def test_cli_evaluate_and_embed_refuse_batch_sizes_below_one(model_dir, tmp_path, batch_size):
    evaluate = ["evaluate", "--regions", f"{CONTIG}:1001-1200", "--train_regions", f"{CONTIG}:1-1000", "--length",
                "64"]  # fmt: skip
    embed = ["embed", "--records", CONTIG, "--output", tmp_path / "e.npy"]
    for command in (evaluate, embed):
        out = run_cli(*command, "--model", model_dir, "--fasta", FASTA, "--batch_size", batch_size, cwd=REPO)
        assert out.returncode == 2 and f"batch_size must be positive, got {batch_size}" in out.stderr, out.stderr


def test_cli_embed_takes_bed_regions_or_records_not_both(model_dir, tmp_path):
    bed = tmp_path / "regions.bed"
    bed.write_text(f"{CONTIG}\t100\t160\tfirst\n")
    out = run_cli("embed", "--model", model_dir, "--fasta", FASTA, "--bed", bed, "--records", CONTIG, "--output",
                  tmp_path / "e.npy", cwd=REPO)  # fmt: skip
    assert out.returncode == 2 and "--bed or --records, not both" in out.stderr and not (tmp_path / "e.npy").exists()


def test_evaluate_refuses_overlapping_regions_and_reports_a_baseline_fitted_on_evaluated_bases(model_dir, caplog):
    from genolong.pipelines.evaluate import evaluate_language_model

    with pytest.raises(UsageError, match=f"{CONTIG}:1001-1100 and {CONTIG}:1051-1150 overlap"):
        evaluate_language_model(model_dir, FASTA, [f"{CONTIG}:1001-1100", f"{CONTIG}:3001-3100",
                                                   f"{CONTIG}:1051-1150"], length=64)  # fmt: skip
    apart = evaluate_language_model(model_dir, FASTA, [f"{CONTIG}:1001-1100"], [f"{CONTIG}:1101-5000"], length=64)
    assert apart["baseline_overlap_bases"] == 0 and "scored on bases it was fitted on" not in caplog.text
    leaky = evaluate_language_model(model_dir, FASTA, [f"{CONTIG}:1001-1100"], [f"{CONTIG}:1071-5000"], length=64)
    assert leaky["baseline_overlap_bases"] == 30 and "hold 30 of the 100 evaluated bases" in caplog.text
    assert leaky["bits_per_base"] == apart["bits_per_base"]  # the model's figure does not depend on the baseline
