"""BAM reads as a pre-training source: the filters against pysam, the served pieces, and training on them."""

from __future__ import annotations

import pysam
import pytest

from genolong.data.reads import ReadSequences
from genolong.data.regions import Region
from genolong.errors import InconsistentDataError, MalformedInputError
from genolong.tokenizers.factory import build_tokenizer
from tests.conftest import DATA, REPO, run_cli

BAM = DATA / "ecoli_200k.reads.bam"
TOKENIZER = build_tokenizer("nucleotide")


def pysam_kept(min_mapq: int = 0) -> list[str]:
    """The sequences the default filters keep, read independently with pysam."""
    with pysam.AlignmentFile(str(BAM)) as bam:
        return [r.query_sequence for r in bam.fetch(until_eof=True)
                if not r.is_unmapped and not r.is_secondary and not r.is_duplicate and not r.is_qcfail
                and r.mapping_quality >= min_mapq and r.query_sequence]  # fmt: skip


def records() -> int:
    with pysam.AlignmentFile(str(BAM)) as bam:
        return sum(1 for _ in bam.fetch(until_eof=True))


def rewritten(tmp_path, name, change):
    """A copy of the bundled BAM with ``change(read)`` applied to every read (indexed)."""
    path = tmp_path / name
    with pysam.AlignmentFile(str(BAM)) as source, pysam.AlignmentFile(str(path), "wb", template=source) as out:
        for read in source.fetch(until_eof=True):
            change(read)
            out.write(read)
    pysam.index(str(path))
    return path


@pytest.mark.parametrize("min_mapq", [0, 30])
def test_kept_reads_are_the_filtered_alignments_and_every_other_record_is_counted_once(min_mapq):
    reads = ReadSequences(BAM, TOKENIZER, 64, min_mapq=min_mapq)
    expected = pysam_kept(min_mapq)
    assert [reads.read(i) for i in range(reads.reads)] == expected
    assert reads.reads + sum(reads.skipped.values()) == records()
    assert reads.skipped["unmapped"] > 0 and reads.skipped["duplicate"] + reads.skipped["secondary"] > 0
    assert (reads.skipped["low_mapq"] > 0) == (min_mapq > 0)


def test_reads_in_overlapping_regions_are_kept_and_counted_once():
    once = ReadSequences(BAM, TOKENIZER, 64, regions=["MIIJ01000039.1:1-50000"], min_mapq=30)
    twice = ReadSequences(BAM, TOKENIZER, 64, regions=["MIIJ01000039.1:1-50000"] * 2, min_mapq=30)
    assert (twice.reads, twice.skipped) == (once.reads, once.skipped)


def test_reads_over_held_out_regions_are_left_out_and_counted():
    held_out = Region("MIIJ01000039.1", 170_000, 200_000)
    reads = ReadSequences(BAM, TOKENIZER, 64, held_out=[held_out])
    with pysam.AlignmentFile(str(BAM)) as bam:
        inside = [r.query_sequence for r in bam.fetch(held_out.contig, held_out.start, held_out.end)
                  if not (r.is_unmapped or r.is_secondary or r.is_duplicate or r.is_qcfail)]  # fmt: skip
    assert reads.skipped["held_out"] == len(inside) > 100
    assert reads.reads == len(pysam_kept()) - len(inside)


def test_reads_with_too_many_n_are_counted_and_all_n_reads_leave_nothing(tmp_path):
    def all_n(read):
        if read.query_sequence:
            read.query_sequence = "N" * len(read.query_sequence)  # (clears the qualities; fine here)

    path = rewritten(tmp_path, "alln.bam", all_n)
    with pytest.raises(InconsistentDataError, match="no read passes the filters .*n_fraction"):
        ReadSequences(path, TOKENIZER, 64, max_n_fraction=0.1)


def test_a_read_with_a_letter_that_is_not_a_base_is_malformed_naming_the_read(tmp_path):
    def equals(read):
        if read.query_sequence and read.query_name == first:
            read.query_sequence = read.query_sequence[:9] + "=" + read.query_sequence[10:]

    first = pysam_names()[0]
    path = rewritten(tmp_path, "eq.bam", equals)
    with pytest.raises(MalformedInputError, match="'=' at position 10") as caught:
        ReadSequences(path, TOKENIZER, 64)
    assert first in str(caught.value) and "eq.bam" in str(caught.value)


def test_unaligned_inputs_are_refused_with_what_to_do(tmp_path):
    def unmap(read):
        read.flag |= 0x4

    with pytest.raises(InconsistentDataError, match="unmapped") as caught:
        ReadSequences(rewritten(tmp_path, "unmapped.bam", unmap), TOKENIZER, 64)
    assert "align them" in str(caught.value)
    fastq = tmp_path / "reads.fastq"
    fastq.write_text("@r1\nACGTACGTAC\n+\nIIIIIIIIII\n")
    with pytest.raises(MalformedInputError, match="not a SAM/BAM/CRAM"):
        ReadSequences(fastq, TOKENIZER, 64)


def pysam_names() -> list[str]:
    with pysam.AlignmentFile(str(BAM)) as bam:
        return [r.query_name for r in bam.fetch(until_eof=True) if not r.is_unmapped and r.query_sequence]


def test_pieces_are_seeded_substrings_of_reads():
    reads = ReadSequences(BAM, TOKENIZER, 40, samples_per_epoch=50, reverse_complement=False, seed=3)
    texts = set(pysam_kept())
    for i in range(50):
        ids = reads[i]["input_ids"]
        piece = TOKENIZER.decode(ids.tolist()).replace(" ", "")
        assert len(piece) == 40 and any(piece in t for t in texts)
        assert ids.tolist() == reads[i]["input_ids"].tolist()  # a pure function of the index


def test_region_restricted_reads():
    reads = ReadSequences(BAM, TOKENIZER, 64, regions=["MIIJ01000039.1:1-20000"])
    with pysam.AlignmentFile(str(BAM)) as bam:
        overlapping = {r.query_name for r in bam.fetch("MIIJ01000039.1", 0, 20000)}
    assert 0 < reads.reads <= len(overlapping)


def test_data_module_trains_on_reads_and_validates_on_the_reference(tmp_path):
    out = run_cli("fit", "--config", REPO / "configs/hyena/tiny.yaml", "--data.init_args.reads", BAM,
                  "--model.init_args.model_overrides", '{"mixers": "hyena*2", "d_model": 32}',
                  "--trainer.fast_dev_run", "2", "--trainer.default_root_dir", tmp_path, cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "reads kept" in out.stderr and "max_steps=2" in out.stderr


def test_short_reads_get_bigger_batches_and_validation_regions_are_held_out():
    from genolong.data.datamodule import GenomeDataModule

    module = GenomeDataModule(str(DATA / "ecoli_200k.fa"), val_regions=["MIIJ01000039.1:170001-200000"],
                              stages=[(1024, 0)], tokens_per_step=8192, reads=str(BAM),
                              read_regions="MIIJ01000039.1:1-200000")  # fmt: skip
    length, batch_size, _ = module.stage(0)
    reads = module._read_sequences(length)
    assert reads.mean_piece_length() < 200  # the bundled reads are short
    assert batch_size == round(8192 / reads.mean_piece_length())
    assert reads.skipped["held_out"] > 0
    batch = next(iter(module.train_dataloader()))
    assert abs(int(batch["attention_mask"].sum()) - 8192) < 8192 * 0.2
