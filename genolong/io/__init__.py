"""Readers for the files biologists have: FASTA, VCF/BCF, BAM/CRAM, BED and GFF3/GTF."""
