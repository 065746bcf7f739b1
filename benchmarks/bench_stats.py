"""Benchmark of the statistics core at the papers' scale (w = 838 concepts).

Prints two ratios, each against a baseline measured in the same run:

1. ``two_vs_two`` versus the literal per-pair loop of tests/reference.py (the loop is
   timed on a random sample of pairs and extrapolated to all 350,703 pairs).
   Target: at least 1000× faster.
2. Time per permutation of ``two_vs_two_null`` versus one w × w × w matrix product
   on the same device and dtype.  Target: at most 2×.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_stats.py --help``).
Results are also written as JSON to ``benchmarks/out/stats.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from reference import pearson  # noqa: E402

from wordlens import stats  # noqa: E402
from wordlens.device import resolve_device, resolve_dtype  # noqa: E402


def realistic_matrices(w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Concept correlation matrices like the papers': a ReLU layer of 4096 features whose
    concepts correlate ~0.4 on average, and 300-d word vectors, sharing a weak 20-d
    latent semantics (2 vs. 2 accuracy ~0.9, as in late CNN layers)."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(w, 20))
    common = 25.0 * rng.normal(size=4096)
    image = np.maximum(0.0, common + Z @ rng.normal(size=(20, 4096)) + 25.0 * rng.normal(size=(w, 4096)))
    words = Z @ rng.normal(size=(20, 300)) + 20.0 * rng.normal(size=(w, 300))
    return stats.corr_rows(image), stats.corr_rows(words)


def loop_pair(A: np.ndarray, B: np.ndarray, i: int, j: int) -> bool:
    """The literal 2 vs. 2 test for one pair (as tests/reference.py two_vs_two_loop)."""
    w = A.shape[0]
    keep = [k for k in range(w) if k != i and k != j]
    a_i, a_j, b_i, b_j = A[i, keep], A[j, keep], B[i, keep], B[j, keep]
    return pearson(a_i, b_i) + pearson(a_j, b_j) > pearson(a_i, b_j) + pearson(a_j, b_i)


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--w", type=int, default=838, help="number of concepts (default 838, the paper's)")
    parser.add_argument("--device", default="auto", help="torch device for the null (auto, cpu, cuda)")
    parser.add_argument("--dtype", default="float64", help="float64 (default) or float32")
    parser.add_argument("--loop-pairs", type=int, default=1500, help="pairs timed with the literal loop")
    parser.add_argument("--permutations", type=int, default=0, help="permutations timed (default: 200 CPU, 1000 CUDA)")
    parser.add_argument("--batch-size", type=int, default=None, help="permutations per batch (default: automatic)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "stats.json")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype)
    w = args.w
    n_pairs = w * (w - 1) // 2
    A, B = realistic_matrices(w, seed=0)
    print(f"wordlens statistics benchmark: w = {w} concepts, {n_pairs:,} pairs")
    print(f"  torch {torch.__version__}, {torch.get_num_threads()} CPU threads, null on {device} ({args.dtype})")

    # (1) two_vs_two versus the literal loop.
    fast = median_time(lambda: stats.two_vs_two(A, B), repeats=5)
    result = stats.two_vs_two_pairs(A, B)
    rng = np.random.default_rng(1)
    sample = set()
    while len(sample) < min(args.loop_pairs, n_pairs):
        i, j = sorted(rng.choice(w, size=2, replace=False).tolist())
        sample.add((i, j))
    sample = sorted(sample)
    t0 = time.perf_counter()
    outcomes = [loop_pair(A, B, i, j) for i, j in sample]
    loop_per_pair = (time.perf_counter() - t0) / len(sample)
    agree = sum(o == bool(result.passed[i, j]) for o, (i, j) in zip(outcomes, sample))
    loop_total = loop_per_pair * n_pairs
    ratio1 = loop_total / fast
    print("\n(1) two_vs_two versus the literal per-pair loop")
    print(f"  two_vs_two (all pairs):         {fast * 1e3:10.1f} ms   accuracy {result.accuracy:.4f}")
    print(f"  literal loop, {len(sample)} pairs timed: {loop_per_pair * 1e6:10.1f} µs/pair "
          f"-> {loop_total:8.1f} s extrapolated to all pairs")
    print(f"  outcomes agree on {agree}/{len(sample)} sampled pairs")
    print(f"  ratio loop / fast:              {ratio1:10.0f}x   (target >= 1000x)")

    # (2) per-permutation cost of the null versus one w × w × w matrix product.
    n_perm = args.permutations or (1000 if device.type == "cuda" else 200)
    tA = torch.as_tensor(A, dtype=dtype, device=device)
    tB = torch.as_tensor(B, dtype=dtype, device=device)

    def matmul():
        torch.matmul(tA, tB.T)
        sync(device)

    mm = median_time(matmul, repeats=30)

    def null():
        stats.two_vs_two_null(A, B, n_perm, seed=0, device=device, dtype=dtype, batch_size=args.batch_size)
        sync(device)

    per_perm = median_time(null, repeats=3) / n_perm
    ratio2 = per_perm / mm
    print(f"\n(2) two_vs_two_null: {n_perm} permutations on {device}, {args.dtype}")
    print(f"  one {w}x{w}x{w} matmul:          {mm * 1e3:10.2f} ms")
    print(f"  null, per permutation:          {per_perm * 1e3:10.2f} ms")
    print(f"  ratio permutation / matmul:     {ratio2:10.2f}x   (target <= 2x)")
    print(f"  -> 1000 permutations x 5 groups x 50 layers ~ {per_perm * 1000 * 5 * 50 / 3600:.1f} h on this device")

    ok = ratio1 >= 1000 and ratio2 <= 2.0 and agree == len(sample)
    print("\nall targets met" if ok else "\nTARGET MISSED")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "w": w,
        "device": str(device),
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "two_vs_two_s": fast,
        "loop_per_pair_s": loop_per_pair,
        "loop_extrapolated_s": loop_total,
        "ratio_loop_over_fast": ratio1,
        "sample_agreement": [agree, len(sample)],
        "matmul_s": mm,
        "null_per_permutation_s": per_perm,
        "ratio_permutation_over_matmul": ratio2,
        "targets_met": ok,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written {args.out}")
    return 1 if (args.strict and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
