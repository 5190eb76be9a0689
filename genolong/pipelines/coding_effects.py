"""The effect of single-base changes on the protein a CDS encodes: synonymous, missense or nonsense.

Every SNV of every internal codon of a transcript is classified with a genetic code (NCBI translation table,
Biopython's tables): ``synonymous`` (same amino acid), ``missense`` (another amino acid) or ``nonsense`` (a
stop codon). The first codon (the start) and a final stop codon are left out: a change there is a start or stop
loss, neither of the three classes. Codons containing a non-ACGT base are left out too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from genolong.io.alleles import Variant
from genolong.io.gff import Transcript

EFFECTS = ("synonymous", "missense", "nonsense")
_COMPLEMENT = str.maketrans("ACGT", "TGCA")


@dataclass(frozen=True)
class CodingSNV:
    variant: Variant  # forward-strand genomic change
    effect: str  # one of EFFECTS
    transcript: str
    strand: str  # the transcript's strand: "+" or "-"
    codon: int  # 0-based codon index in the CDS
    ref_codon: str  # on the transcript's strand
    alt_codon: str


def genetic_code(table: int = 11) -> tuple[dict[str, str], frozenset[str]]:
    """(codon -> amino acid for sense codons, stop codons) of NCBI translation table ``table``."""
    from Bio.Data.CodonTable import unambiguous_dna_by_id

    code = unambiguous_dna_by_id[table]
    return dict(code.forward_table), frozenset(code.stop_codons)


def coding_snvs(transcript: Transcript, reference: Any, table: int = 11) -> Iterator[CodingSNV]:
    """Every classified SNV of ``transcript``'s internal codons (see the module docstring), 5' to 3'."""
    sense, stops = genetic_code(table)
    places = [(seg.contig, p, seg.strand) for seg in transcript.segments  # (contig, 0-based pos, strand)
              for p in (range(seg.start, seg.end) if seg.strand != "-" else range(seg.end - 1, seg.start - 1, -1))]
    seq = transcript.sequence(reference)  # 5'->3' on the transcript's strand, as places
    first = transcript.phase
    codons = range(first, len(seq) - 2, 3)
    for number, start in enumerate(codons):
        ref_codon = seq[start : start + 3]
        last = start + 3 > len(seq) - 3
        if number == 0 or (last and ref_codon in stops) or ref_codon not in sense:
            continue
        for offset in range(3):
            contig, pos, strand = places[start + offset]
            for alt_base in "ACGT":
                if alt_base == ref_codon[offset]:
                    continue
                alt_codon = ref_codon[:offset] + alt_base + ref_codon[offset + 1 :]
                effect = ("nonsense" if alt_codon in stops else
                          "synonymous" if sense[alt_codon] == sense[ref_codon] else "missense")  # fmt: skip
                ref, alt = ref_codon[offset], alt_base
                if strand == "-":
                    ref, alt = ref.translate(_COMPLEMENT), alt.translate(_COMPLEMENT)
                yield CodingSNV(Variant(contig, pos, ref, alt), effect, transcript.id, strand or "+", number, ref_codon,
                                alt_codon)  # fmt: skip
