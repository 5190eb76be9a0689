"""Rebuild the bundled data in this folder from the real genomes in ``../shared/data`` (or ``--source DIR``).

    python data/make_data.py            # writes ecoli_200k.fa, ecoli_200k.cds.gff3 (and the variant/read files)

Every file here is deterministic: running the script again reproduces it byte for byte (a test checks this).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTIG = "MIIJ01000039.1"
SLICE_END = 200_000  # the slice is [0, 200000) of the contig, so its coordinates equal the original's
LINE_WIDTH = 80


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    make_reference(args.source, args.out)


if __name__ == "__main__":
    main()
