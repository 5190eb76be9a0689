"""SNV effect classes on real E. coli genes, checked by translating the whole mutated CDS with Biopython."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from Bio.Seq import Seq

from genolong.io.fasta import Fasta
from genolong.io.gff import cds_transcripts
from genolong.pipelines.coding_effects import coding_snvs
from genolong.tokenizers.alphabet import reverse_complement
from tests.conftest import DATA

FASTA, GFF = DATA / "ecoli_200k.fa", DATA / "ecoli_200k.cds.gff3"


@pytest.fixture(scope="module")
def genome():
    with Fasta(FASTA) as fasta:
        yield fasta


@pytest.mark.parametrize("strand", ["+", "-"])
def test_effects_agree_with_translating_the_mutated_gene(genome, strand):
    transcript = next(t for t in cds_transcripts(GFF) if t.strand == strand and not t.spliced)
    seg = transcript.segments[0]
    protein = str(Seq(transcript.sequence(genome)).translate(table=11))
    snvs = list(coding_snvs(transcript, genome))
    codons = transcript.length // 3
    assert len(snvs) == 9 * (codons - 2)  # every SNV of every internal codon (start and stop left out)
    assert Counter(s.effect for s in snvs).keys() == {"synonymous", "missense", "nonsense"}
    for snv in random.Random(0).sample(snvs, 150):
        v = snv.variant
        assert genome.fetch(v.contig, v.pos, v.pos + 1).upper() == v.ref
        gene = genome.fetch(seg.contig, seg.start, seg.end).upper()
        gene = gene[: v.pos - seg.start] + v.alt + gene[v.pos - seg.start + 1 :]
        mutated = str(Seq(gene if strand == "+" else reverse_complement(gene)).translate(table=11))
        changed = [i for i, (a, b) in enumerate(zip(protein, mutated, strict=True)) if a != b]
        if snv.effect == "synonymous":
            assert changed == []
        else:
            assert changed == [snv.codon]
            assert (mutated[snv.codon] == "*") == (snv.effect == "nonsense")
