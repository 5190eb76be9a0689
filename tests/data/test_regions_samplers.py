"""Regions parse as samtools does; the sampler resumes exactly and splits replicas without overlap."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genolong.data.regions import Region, parse_region, resolve_regions
from genolong.data.samplers import EPOCH_STRIDE, ResumableSampler
from genolong.errors import InconsistentDataError, UsageError

LENGTHS = {"chr1": 1000, "chrM": 50, "HLA-A*01:01": 300}


@settings(max_examples=100, deadline=None)
@given(contig=st.sampled_from(sorted(LENGTHS)), data=st.data())
def test_region_string_round_trip(contig, data):
    start = data.draw(st.integers(0, LENGTHS[contig] - 1))
    end = data.draw(st.integers(start + 1, LENGTHS[contig]))
    region = Region(contig, start, end)
    assert parse_region(str(region), LENGTHS) == region


def test_region_forms():
    assert parse_region("chr1", LENGTHS) == Region("chr1", 0, 1000)
    assert parse_region("chr1:1,001-2,000", {"chr1": 2000}) == Region("chr1", 1000, 2000)
    assert parse_region("chr1:11-20", LENGTHS) == Region("chr1", 10, 20)
    assert parse_region("HLA-A*01:01", LENGTHS) == Region("HLA-A*01:01", 0, 300)  # ':' inside a contig name
    assert resolve_regions(None, LENGTHS) == [Region(c, 0, n) for c, n in LENGTHS.items()]
    assert resolve_regions(["chrM", "chr1:1-10"], LENGTHS) == [Region("chrM", 0, 50), Region("chr1", 0, 10)]


def test_open_ended_regions_run_to_the_contig_end():
    assert parse_region("chr1:901", LENGTHS) == Region("chr1", 900, 1000)
    assert parse_region("chr1:901-", LENGTHS) == Region("chr1", 900, 1000)


@pytest.mark.parametrize("text", ["chr2", "chr2:1-10", "chr1:1-1001"])
def test_regions_the_reference_lacks_are_inconsistent_data(text):
    with pytest.raises(InconsistentDataError):
        parse_region(text, LENGTHS)


@pytest.mark.parametrize("text", ["chr1:0-10", "chr1:20-10", "chr1:abc", "chr1:1-2-3"])
def test_malformed_regions_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_region(text, LENGTHS)


def test_sampler_resumes_exactly():
    full = ResumableSampler(100, shuffle=True, seed=3)
    full.set_epoch(2)
    everything = list(full)
    first = ResumableSampler(100, shuffle=True, seed=3)
    first.set_epoch(2)
    taken = list(first)[:37]
    first.advance(37)
    resumed = ResumableSampler(100, shuffle=True, seed=99)
    resumed.load_state_dict(first.state_dict())
    assert taken + list(resumed) == everything
    assert len(resumed) == 100  # the epoch's length, whatever was consumed (see ResumableSampler.__len__)
    assert all(i // EPOCH_STRIDE == 2 for i in everything)


def test_sampler_replicas_partition_the_epoch():
    parts = []
    for rank in range(3):
        sampler = ResumableSampler(10, shuffle=True, seed=0, num_replicas=3, rank=rank)
        parts.append(list(sampler))
    flat = sorted(i for part in parts for i in part)
    assert flat == list(range(10))


def test_new_epoch_starts_fresh():
    sampler = ResumableSampler(8, shuffle=True, seed=1)
    sampler.advance(5)
    sampler.set_epoch(1)
    assert sampler.consumed == 0 and len(list(sampler)) == 8
