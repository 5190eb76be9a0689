"""Rebuild the bundled data in this folder from the real genomes in ``../shared/data`` (or ``--source DIR``).

    python data/make_data.py    # writes ecoli_200k.fa, ecoli_200k.cds.gff3, the variant and read files

Every file here is deterministic: running the script again reproduces it byte for byte (a test checks this).
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTIG = "MIIJ01000039.1"
SLICE_END = 200_000  # the slice is [0, 200000) of the contig, so its coordinates equal the original's
LINE_WIDTH = 80
VCF_NAME = "ecoli_200k.variants.vcf.gz"
BAM_NAME = "ecoli_200k.reads.bam"
READ_SEED = 20240611
READ_LENGTH = 100
N_READS = 3000


def read_single_fasta(path: Path) -> tuple[str, str]:
    """(header line without '>', sequence) of a one-record FASTA."""
    lines = path.read_text().splitlines()
    return lines[0][1:], "".join(lines[1:])


def make_reference(source: Path, out: Path = HERE) -> str:
    """Write ecoli_200k.fa and ecoli_200k.cds.gff3; return the sequence."""
    header, seq = read_single_fasta(source / "ecoli_MIIJ01000039.fa")
    assert header.split()[0] == CONTIG, header
    seq = seq[:SLICE_END]
    with open(out / "ecoli_200k.fa", "w") as fh:
        fh.write(f">{CONTIG} Escherichia coli contig MIIJ01000039.1, bases 1-{SLICE_END}\n")
        for i in range(0, len(seq), LINE_WIDTH):
            fh.write(seq[i : i + LINE_WIDTH] + "\n")
    kept = []
    for line in (source / "ecoli_MIIJ01000039.cds.gff3").read_text().splitlines():
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if int(cols[4]) <= SLICE_END:  # GFF3 end is 1-based inclusive
            kept.append(line)
    with open(out / "ecoli_200k.cds.gff3", "w") as fh:
        fh.write("##gff-version 3\n")
        fh.write(f"##sequence-region {CONTIG} 1 {SLICE_END}\n")
        fh.write("\n".join(kept) + "\n")
    return seq


def _other_base(base: str, shift: int = 1) -> str:
    return "ACGT"[("ACGT".index(base) + shift) % 4]


def variant_records(seq: str) -> list[tuple[int, str, str, str, str]]:
    """(POS 1-based, ID, REF, ALT, INFO) rows, sorted by POS, each exercising one case of the reader."""
    run = re.search(r"A{7,}|C{7,}|G{7,}|T{7,}", seq[4000:])
    assert run is not None
    run_end = 4000 + run.end()  # 0-based end of a homopolymer: a 1-bp deletion written at its right end
    last = len(seq)
    rows = [
        (1, "edge_first_deletion", seq[0:2], seq[1], "."),  # deletes base 1, anchored on the right (VCF rule)
        (100, "snv_intergenic", seq[99], _other_base(seq[99]), "."),
        (300, "snv_cds", seq[299], _other_base(seq[299]), "."),  # inside cds1 (205-945)
        (1000, "mnv", seq[999:1001], _other_base(seq[999]) + _other_base(seq[1000]), "."),
        (2000, "multiallelic", seq[1999:2001], f"{seq[1999]},{_other_base(seq[1999])}{seq[2000]}", "."),
        (3000, "insertion", seq[2999], seq[2999] + _other_base(seq[2999]) * 2, "."),
        (run_end - 1, "deletion_right_shifted", seq[run_end - 2 : run_end], seq[run_end - 2], "."),
        (20000, "spanning_deletion", seq[19999], f"{_other_base(seq[19999])},*", "."),
        (21000, "symbolic_del", seq[20999], "<DEL>", "SVTYPE=DEL;END=21100"),
        (22000, "breakend", seq[21999], f"{seq[21999]}]{CONTIG}:150000]", "SVTYPE=BND"),
        (23000, "missing_alt", seq[22999], ".", "."),
        (24000, "ref_mismatch", _other_base(seq[23999]), _other_base(seq[23999], 2), "."),
        (last, "edge_last_snv", seq[last - 1], _other_base(seq[last - 1]), "."),
        (last, "beyond_contig_end", seq[last - 1] + "A", seq[last - 1], "."),
    ]
    return sorted(rows, key=lambda row: row[0])


def make_variants(seq: str, out: Path = HERE) -> Path:
    """Write the bgzipped, tabix-indexed test VCF (plain text first, then pysam's bgzip and tabix)."""
    import pysam

    header = [
        "##fileformat=VCFv4.2",
        f"##contig=<ID={CONTIG},length={len(seq)}>",
        '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of structural variant">',
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End position of the variant">',
        '##ALT=<ID=DEL,Description="Deletion">',
        "##source=genolong data/make_data.py (hand-made cases on the E. coli slice)",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    rows = [f"{CONTIG}\t{pos}\t{vid}\t{ref}\t{alt}\t.\tPASS\t{info}" for pos, vid, ref, alt, info in
            variant_records(seq)]  # fmt: skip
    plain = out / VCF_NAME.removesuffix(".gz")
    plain.write_text("\n".join(header + rows) + "\n")
    pysam.tabix_compress(str(plain), str(out / VCF_NAME), force=True)
    plain.unlink()
    pysam.tabix_index(str(out / VCF_NAME), preset="vcf", force=True)
    return out / VCF_NAME


def _simulated_read(seq: str, rng: random.Random, name: str, header: object) -> object:
    """One mapped 100-bp read copied from the slice: a few mismatches, sometimes an indel or a clip."""
    import pysam

    start = rng.randrange(0, len(seq) - READ_LENGTH - 10)
    shape = rng.random()
    if shape < 0.05:  # 2-bp deletion
        cigar, bases = "50M2D50M", seq[start : start + 50] + seq[start + 52 : start + 102]
    elif shape < 0.10:  # 2-bp insertion
        cigar, bases = "49M2I49M", seq[start : start + 49] + "TT" + seq[start + 49 : start + 98]
    elif shape < 0.15:  # soft clip of 10 random bases
        cigar, bases = "10S90M", "".join(rng.choice("ACGT") for _ in range(10)) + seq[start : start + 90]
    else:
        cigar, bases = f"{READ_LENGTH}M", seq[start : start + READ_LENGTH]
    bases_list, quals = list(bases), [30] * len(bases)
    for i in rng.sample(range(len(bases)), rng.randrange(0, 4)):  # mismatches, at low base quality
        bases_list[i], quals[i] = _other_base(bases_list[i], rng.randrange(1, 4)), 12
    read = pysam.AlignedSegment(header)
    read.query_name, read.reference_id, read.reference_start = name, 0, start
    read.cigarstring, read.query_sequence = cigar, "".join(bases_list)
    read.query_qualities = pysam.qualitystring_to_array("".join(chr(q + 33) for q in quals))
    read.flag = 16 if rng.random() < 0.5 else 0
    read.mapping_quality = 0 if rng.random() < 0.03 else 60
    return read


def make_reads(seq: str, out: Path = HERE, n_reads: int = N_READS, seed: int = READ_SEED) -> Path:
    """Write a coordinate-sorted, indexed BAM of simulated reads: mostly primary, with duplicates, MAPQ 0,
    secondary, supplementary, QC-failed and unmapped records."""
    import pysam

    rng = random.Random(seed)
    header = pysam.AlignmentHeader.from_dict(
        {"HD": {"VN": "1.6", "SO": "unsorted"}, "SQ": [{"SN": CONTIG, "LN": len(seq)}]}
    )
    reads = []
    for i in range(n_reads):
        read = _simulated_read(seq, rng, f"sim{i:05d}", header)
        special = rng.random()
        if special < 0.03 and reads:  # a PCR duplicate of the previous read
            twin = reads[-1]
            read.reference_start, read.cigarstring = twin.reference_start, twin.cigarstring
            read.query_sequence, read.query_qualities = twin.query_sequence, twin.query_qualities
            read.flag = twin.flag | 0x400
        elif special < 0.04:
            read.flag |= 0x100  # secondary
            read.mapping_quality = 0
        elif special < 0.05:
            read.flag |= 0x800  # supplementary
        elif special < 0.055:
            read.flag |= 0x200  # QC fail
        reads.append(read)
    for i in range(10):  # unmapped reads: no position, placed last
        read = pysam.AlignedSegment(header)
        read.query_name, read.flag, read.reference_id, read.reference_start = f"unmapped{i:02d}", 4, -1, -1
        read.query_sequence = "".join(rng.choice("ACGT") for _ in range(READ_LENGTH))
        read.query_qualities = pysam.qualitystring_to_array("?" * READ_LENGTH)
        reads.append(read)
    unsorted = out / (BAM_NAME + ".unsorted.bam")
    with pysam.AlignmentFile(str(unsorted), "wb", header=header) as handle:
        for read in reads:
            handle.write(read)
    pysam.sort("--no-PG", "-o", str(out / BAM_NAME), str(unsorted))
    unsorted.unlink()
    pysam.index(str(out / BAM_NAME))
    return out / BAM_NAME


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    seq = make_reference(args.source, args.out)
    make_variants(seq, args.out)
    make_reads(seq, args.out)


if __name__ == "__main__":
    main()
