"""Benchmark of wordlens.clustering at the papers' scale (w = 838 concepts).

Prints, each against a baseline measured in the same run:

1. Time per permutation of ``agreement_null`` (cophenetic correlation + Fowlkes–Mallows
   at a few cuts, by relabelling the layer's cophenetic matrix and cluster labels)
   versus one 2 vs. 2 permutation at the same w (``stats.two_vs_two_null``: one call
   with ``n_permutations=1``, and the per-permutation cost of a batched call), and
   versus literally re-clustering the permuted distances.
   Target: the agreement permutation costs at most as much as one 2 vs. 2 permutation.
2. Peak memory (tracemalloc: numpy allocations, not HDF5's own chunk cache) of
   ``representative_vectors`` over layers of increasing width (40 concepts × 5 images
   in an HDF5 file like the activation cache), against the size of the rows read.
   Target: flat once the layer is wider than one feature block.

Run with ``.venv/bin/python benchmarks/bench_clustering.py`` (``--help`` for options);
results are also written as JSON to ``benchmarks/out/clustering.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

from wordlens import clustering as cl
from wordlens import stats

HERE = Path(__file__).resolve().parent

#: Layer shapes (C, H, W) of increasing width: 50,176, 200,704 and 802,816 features
#: (the last is ResNet-18's conv1 output at 224 × 224).
WIDTHS = [(256, 14, 14), (64, 56, 56), (64, 112, 112)]


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def realistic_vectors(w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Representative vectors of a ReLU layer (2048 features) and 300-d word vectors
    sharing a weak 20-d latent semantics (as benchmarks/bench_stats.py)."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(w, 20))
    common = 25.0 * rng.normal(size=2048)
    image = np.maximum(0.0, common + Z @ rng.normal(size=(20, 2048)) + 25.0 * rng.normal(size=(w, 2048)))
    words = Z @ rng.normal(size=(20, 300)) + 20.0 * rng.normal(size=(w, 300))
    return image, words


def bench_null(w: int, cuts: list[int], n_perm: int, n_recluster: int) -> dict:
    image, words = realistic_vectors(w, seed=0)
    D_layer = cl.category_distances(image)
    D_ref = cl.category_distances(words, "correlation")
    Z_layer, Z_ref = cl.dai_hierarchy(D_layer), cl.dai_hierarchy(D_ref)
    observed = cl.agreement(Z_layer, Z_ref, cuts)

    null_s = median_time(lambda: cl.agreement_null(Z_layer, Z_ref, cuts, seed=0, start=0, stop=n_perm), repeats=3)
    per_perm = null_s / n_perm

    def recluster():
        for p in range(n_recluster):
            perm = stats.permutation(w, 0, p)
            cl.agreement(cl.dai_hierarchy(D_layer[perm][:, perm]), Z_ref, cuts)

    recluster_per_perm = median_time(recluster, repeats=3) / n_recluster

    # The 2 vs. 2 test at the same w, on the concepts' correlation matrices.
    A, B = stats.corr_rows(image), stats.corr_rows(words)
    one_call = median_time(lambda: stats.two_vs_two_null(A, B, 1, seed=0, device="cpu"), repeats=5)
    batched = median_time(lambda: stats.two_vs_two_null(A, B, 50, seed=0, device="cpu"), repeats=3) / 50
    null = cl.agreement_null(Z_layer, Z_ref, cuts, seed=0, start=0, stop=n_perm)
    return {
        "w": w,
        "cuts": cuts,
        "observed": observed,
        "pvalues": cl.agreement_pvalues(observed, null),
        "agreement_null_per_permutation_s": per_perm,
        "recluster_per_permutation_s": recluster_per_perm,
        "two_vs_two_null_one_call_s": one_call,
        "two_vs_two_null_batched_per_permutation_s": batched,
        "ratio_agreement_over_2v2_call": per_perm / one_call,
        "ratio_agreement_over_2v2_batched": per_perm / batched,
        "ratio_recluster_over_agreement": recluster_per_perm / per_perm,
    }


def bench_memory(folder: Path, n_concepts: int, per_concept: int, block: int) -> list[dict]:
    import h5py

    rng = np.random.default_rng(1)
    n = n_concepts * per_concept
    order = rng.permutation(n)  # concepts' images interleaved in the file, as after shuffling
    rows = [np.sort(order[c * per_concept:(c + 1) * per_concept]) for c in range(n_concepts)]
    out = []
    for shape in WIDTHS:
        width = int(np.prod(shape))
        path = folder / f"layer_{width}.h5"
        with h5py.File(path, "w") as f:  # the cache's layout: float32, chunks of (batch × 16,384 features)
            dset = f.create_dataset("activations", shape=(n, width), dtype=np.float32, chunks=(64, 16384))
            for a in range(0, n, 64):
                b = min(n, a + 64)
                dset[a:b] = np.maximum(0.0, rng.normal(size=(b - a, width))).astype(np.float32)
            f.attrs["layer_shape"] = list(shape)
        record = {"shape": list(shape), "features": width, "rows_read_mib": n * width * 4 / 2**20}
        for channel_mean in (False, True):
            with h5py.File(path, "r") as f:
                tracemalloc.start()
                t0 = time.perf_counter()
                V = cl.representative_vectors(f["activations"], rows, channel_mean=channel_mean, block_features=block)
                seconds = time.perf_counter() - t0
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            key = "channel_mean" if channel_mean else "flat"
            record[f"{key}_peak_mib"] = peak / 2**20
            record[f"{key}_output_mib"] = V.nbytes / 2**20
            record[f"{key}_s"] = seconds
        with h5py.File(path, "r") as f:  # what cluster_layer runs for all but the figure layers
            tracemalloc.start()
            cl.representative_distances(f["activations"], rows, block_features=block)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        record["distances_peak_mib"] = peak / 2**20
        path.unlink()
        out.append(record)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--w", type=int, default=838, help="number of concepts (default 838, the paper's)")
    parser.add_argument("--cuts", type=int, nargs="+", default=[2, 5, 10, 20, 50], help="FM cuts")
    parser.add_argument("--permutations", type=int, default=200, help="agreement-null permutations timed")
    parser.add_argument("--recluster", type=int, default=10, help="literal re-clusterings timed")
    parser.add_argument("--concepts", type=int, default=40, help="concepts in the memory benchmark")
    parser.add_argument("--images", type=int, default=5, help="images per concept in the memory benchmark")
    parser.add_argument("--block", type=int, default=65536, help="block_features of representative_vectors")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the HDF5 files (default: a temp dir)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "clustering.json")
    args = parser.parse_args(argv)

    print(f"wordlens clustering benchmark: w = {args.w} concepts, cuts {args.cuts}")
    print(f"  numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} CPU threads)")
    null = bench_null(args.w, args.cuts, args.permutations, args.recluster)
    print(f"\n(1) agreement null ({args.permutations} permutations) versus one 2 vs. 2 permutation, w = {args.w}")
    print("  observed: " + ", ".join(f"{k} {v:.3f}" for k, v in null["observed"].items()))
    print(f"  agreement_null, per permutation:          {null['agreement_null_per_permutation_s'] * 1e3:9.2f} ms")
    print(f"  literal re-clustering, per permutation:   {null['recluster_per_permutation_s'] * 1e3:9.2f} ms "
          f"({null['ratio_recluster_over_agreement']:.0f}x slower)")
    print(f"  two_vs_two_null, n_permutations=1 call:   {null['two_vs_two_null_one_call_s'] * 1e3:9.2f} ms")
    print(f"  two_vs_two_null, batched per permutation: "
          f"{null['two_vs_two_null_batched_per_permutation_s'] * 1e3:9.2f} ms")
    print(f"  ratio agreement / 2v2 (one call):         {null['ratio_agreement_over_2v2_call']:9.3f}x")
    print(f"  ratio agreement / 2v2 (batched):          {null['ratio_agreement_over_2v2_batched']:9.3f}x"
          "   (target <= 1x)")
    ok = null["ratio_agreement_over_2v2_batched"] <= 1.0

    memory: list[dict] = []
    if not args.skip_memory:
        print(f"\n(2) representative_vectors peak memory, {args.concepts} concepts x {args.images} images, "
              f"block_features {args.block}")
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            memory = bench_memory(Path(tmp), args.concepts, args.images, args.block)
        print(f"  {'shape':>14} {'features':>9} {'rows MiB':>9} {'flat peak':>10} {'chan peak':>10} "
              f"{'flat s':>7} {'chan s':>7}")
        for r in memory:
            print(f"  {tuple(r['shape'])!s:>14} {r['features']:>9,} {r['rows_read_mib']:>9.1f} "
                  f"{r['flat_peak_mib'] - r['flat_output_mib']:>7.1f} MiB {r['channel_mean_peak_mib']:>6.1f} MiB "
                  f"{r['flat_s']:>7.2f} {r['channel_mean_s']:>7.2f}")
        print("  (flat peak excludes the w x features output itself)")
        print("  representative_distances (Gram matrix in slabs, everything counted): "
              + ", ".join(f"{r['features']:,}: {r['distances_peak_mib']:.1f} MiB" for r in memory))
        dist = [r["distances_peak_mib"] for r in memory]
        bounded = max(dist) <= 1.25 * min(dist[1:] or dist)
        print(f"  distances peak bounded over widths: {bounded}")
        ok = ok and bounded
        wide = [r["channel_mean_peak_mib"] for r in memory if r["features"] > args.block]
        flat = len(wide) < 2 or max(wide) <= 1.25 * min(wide)
        print(f"  channel-mean peak flat over widths > block: {flat}")
        ok = ok and flat

    print("\nall targets met" if ok else "\nTARGET MISSED")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "null": null,
        "memory": memory,
        "targets_met": ok,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written {args.out}")
    return 1 if (args.strict and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
