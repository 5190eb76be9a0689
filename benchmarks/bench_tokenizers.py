"""Tokenizer throughput on one core: genolong's byte-table encoder against a Hugging Face char tokenizer.

    python benchmarks/bench_tokenizers.py            # 64 MiB of random ACGT, under a minute
    python benchmarks/bench_tokenizers.py --quick    # 8 MiB, a few seconds

Prints a table and writes ``benchmarks/results/tokenizers.json``. Throughput is bases per second in MB/s
(1 MB = 10^6 bases = 10^6 bytes of ASCII input), best of ``--repeats`` runs. The baselines run in the same
process on a smaller slice of the same sequence (they are hundreds of times slower), so the ratios compare
like with like on a shared, noisy machine:

- ``hf_char``: a ``tokenizers.Tokenizer`` with a WordLevel model over the same vocabulary and a pre-tokenizer
  that splits every character (``Split(Regex("."), "isolated")``), on one thread (RAYON_NUM_THREADS=1). It is
  run on 4 kb pieces with ``encode_batch_fast`` (its fastest path: no offsets), with ``encode_batch``, and on
  the whole slice as one string; the ratio uses the fastest of these.
- ``python_dict``: ``[vocab[c] for c in seq]``, the per-character Python loop.

Targets (from the project issue): ``NucleotideTokenizer.encode`` >= 1000 MB/s and >= 500x ``hf_char``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault(
    "RAYON_NUM_THREADS", "1"
)  # Hugging Face tokenizers: one core, like everything else here
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from genolong.tokenizers import CdsSegment, CodonTokenizer, KmerTokenizer, NucleotideTokenizer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "tokenizers.json"


def random_acgt(n: int, seed: int = 0) -> str:
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    return letters[np.random.default_rng(seed).integers(0, 4, n)].tobytes().decode("ascii")


def hf_char_tokenizer(vocab: dict[str, int]):
    from tokenizers import Regex, Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Split

    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Split(Regex("."), behavior="isolated")
    return tok


def run(size: int, baseline_size: int, repeats: int) -> list[dict]:
    seq = random_acgt(size)
    small = seq[:baseline_size]
    nuc, kmer6, kmer61, codon = NucleotideTokenizer(), KmerTokenizer(6), KmerTokenizer(6, 1), CodonTokenizer()
    vocab = nuc.get_vocab()
    hf = hf_char_tokenizer(vocab)
    pieces = [small[i : i + 4096] for i in range(0, len(small), 4096)]
    single = small[: baseline_size // 8]  # one long string is the slowest HF path: a smaller slice
    assert [i for e in hf.encode_batch(pieces[:2]) for i in e.ids] == nuc.encode(small[:8192]).tolist()
    hf_fast = getattr(hf, "encode_batch_fast", hf.encode_batch)
    ids = nuc.encode(seq)
    mid = min(size, 8 << 20)  # k-mer and codon rows
    kseq = seq[:mid]
    cds = [CdsSegment(i, i + 3000, "+-"[(i // 3000) % 2], 0) for i in range(0, mid - 3000, 3300)]
    windows = [seq[i << 20 : (i + 1) << 20] for i in range(mid >> 20)]
    cases: list[tuple[str, str, int, Callable[[], object]]] = [
        ("encode", "genolong NucleotideTokenizer.encode -> uint8", size, lambda: nuc.encode(seq)),
        ("encode64", "genolong NucleotideTokenizer.encode -> int64", size,
         lambda: nuc.encode(seq, dtype=np.int64)),
        ("decode", "genolong NucleotideTokenizer.decode", size, lambda: nuc.decode(ids)),
        ("hf_fast", "hf_char encode_batch_fast, 4 kb pieces", baseline_size, lambda: hf_fast(pieces)),
        ("hf_batch", "hf_char encode_batch, 4 kb pieces", baseline_size, lambda: hf.encode_batch(pieces)),
        ("hf_single", "hf_char encode, one string", len(single), lambda: hf.encode(single)),
        ("python_dict", "python_dict [vocab[c] for c in seq]", baseline_size,
         lambda: [vocab[c] for c in small]),
        ("kmer6", "genolong KmerTokenizer(6) stride 6", mid, lambda: kmer6.encode(kseq)),
        ("kmer61", "genolong KmerTokenizer(6, 1) stride 1", mid, lambda: kmer61.encode(kseq)),
        ("codon", "genolong CodonTokenizer, 90% in CDS", mid, lambda: codon.encode(kseq, cds=cds)),
        ("batch", "genolong batch_encode 1 Mb windows -> torch", mid,
         lambda: nuc.batch_encode(windows, return_tensors="pt")),
    ]  # fmt: skip
    best = {key: float("inf") for key, *_ in cases}
    for _ in range(repeats):  # rounds over all cases, so a burst of load elsewhere hits every case alike
        for key, _name, _n, fn in cases:
            start = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - start)
    return [
        {"key": key, "name": name, "bases": n, "seconds": best[key], "mb_per_s": n / best[key] / 1e6}
        for key, name, n, _fn in cases
    ]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size-mib", type=int, default=64, help="sequence size for genolong paths (MiB of bases)"
    )
    parser.add_argument("--baseline-mib", type=float, default=2.0, help="slice size for the slow baselines")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="8 MiB, 0.5 MiB baselines, 3 repeats")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.size_mib, args.baseline_mib, args.repeats = 8, 0.5, 3
    torch.set_num_threads(1)
    rows = run(args.size_mib << 20, int(args.baseline_mib * (1 << 20)), args.repeats)
    rate = {r["key"]: r["mb_per_s"] for r in rows}
    hf_rate = max(rate["hf_fast"], rate["hf_batch"], rate["hf_single"])
    summary = {
        "encode_mb_per_s": rate["encode"],
        "x_hf_char": rate["encode"] / hf_rate,
        "x_hf_char_by_path": {k: rate["encode"] / rate[k] for k in ("hf_fast", "hf_batch", "hf_single")},
        "x_python_dict": rate["encode"] / rate["python_dict"],
        "target_1000_mb_per_s_met": rate["encode"] >= 1000,
        "target_500x_hf_char_met": rate["encode"] / hf_rate >= 500,
    }
    print(f"{'case':<48} {'MB':>7} {'s (best)':>9} {'MB/s':>9} {'x hf_char':>10}")
    for r in rows:
        print(
            f"{r['name']:<48} {r['bases'] / 1e6:>7.1f} {r['seconds']:>9.4f} {r['mb_per_s']:>9.1f} "
            f"{r['mb_per_s'] / hf_rate:>10.1f}"
        )
    print(
        f"encode: {rate['encode']:.0f} MB/s (target >= 1000: {summary['target_1000_mb_per_s_met']}), "
        f"{summary['x_hf_char']:.0f}x hf_char (target >= 500: {summary['target_500x_hf_char_met']}), "
        f"{summary['x_python_dict']:.0f}x python_dict; load average {os.getloadavg()[0]:.1f}"
    )
    report = {
        "benchmark": "tokenizers",
        "threads": {"torch": torch.get_num_threads(), "rayon": os.environ["RAYON_NUM_THREADS"]},
        "load_average_1min": os.getloadavg()[0],
        "machine": {"cpu": platform.processor() or platform.machine(), "python": sys.version.split()[0],
                    "numpy": np.__version__, "torch": torch.__version__},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "rows": rows,
        "summary": summary,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
