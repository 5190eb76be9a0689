"""Tokenizers: single base, k-mer and codon, over the IUPAC DNA alphabet."""
