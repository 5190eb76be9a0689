"""BAM reads as a pre-training source: the filters against pysam, the served pieces, and training on them."""

from __future__ import annotations

import pysam
import pytest

from genolong.data.reads import ReadSequences
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


@pytest.mark.parametrize("min_mapq", [0, 30])
def test_kept_reads_are_the_filtered_alignments(min_mapq):
    reads = ReadSequences(BAM, TOKENIZER, 64, min_mapq=min_mapq)
    expected = pysam_kept(min_mapq)
    assert [reads.read(i) for i in range(reads.reads)] == expected
    if min_mapq:
        assert reads.skipped["filtered"] > 0


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
