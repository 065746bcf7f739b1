"""Benchmark of the activation cache.

1. Extraction throughput (images/s) including HDF5 writes versus the bare forward pass of
   the same model, batch and device, for one late layer, one large early layer and the
   49 ReLU layers of ResNet-50 (random weights).  Target: extraction ≥ 80% of bare
   forward throughput.
2. Peak memory of the correlation step (w = 838 concepts) for layers of growing width,
   each in a fresh process.  Target: independent of the number of features.

Run with ``make bench`` or ``.venv/bin/python benchmarks/bench_activations.py --help``.
Results are also written as JSON to ``benchmarks/out/activations.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def make_source(root: Path, n: int) -> tuple:
    """A CIFAR-style array source of n images in 10 classes (decoding costs nothing)."""
    import pickle

    from wordlens.images import ImageSource, sample_manifest

    base = root / "cifar-100-python"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), n // 10)
    with open(base / "test", "wb") as f:
        pickle.dump({b"data": rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8),
                     b"fine_labels": labels.tolist()}, f)
    with open(base / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}, f)
    source = ImageSource("bench", "cifar100", str(root), split="test")
    return source, sample_manifest(source, images_per_concept=n // 10)


def bench_extraction(args, out: dict) -> None:
    from wordlens.activations import extract_activations
    from wordlens.images import ManifestImages
    from wordlens.layers import graph_nodes, select_layers
    from wordlens.models import ModelSpec, build_model, resolve_preprocessing

    spec = ModelSpec(name="resnet50", arch="resnet50", weights=None,
                     preprocessing={"resize": args.size, "crop": args.size})
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    model = build_model(spec, device)
    pre = resolve_preprocessing(spec)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        source, manifest = make_source(Path(tmp) / "data", args.images)
        dataset = ManifestImages(manifest, source, pre.pixel_transform())
        batches = [torch.stack([dataset[i] for i in range(a, min(a + args.batch, len(dataset)))])
                   for a in range(0, len(dataset), args.batch)]

        def bare() -> float:
            t0 = time.perf_counter()
            with torch.inference_mode():
                for x in batches:
                    model(pre.normalize(x.to(device)))
            if device.type == "cuda":
                torch.cuda.synchronize()
            return len(dataset) / (time.perf_counter() - t0)

        bare()  # warm-up
        bare_ips = max(bare() for _ in range(2))
        print(f"ResNet-50 (random weights), {args.size}x{args.size}, batch {args.batch}, {len(dataset)} images, "
              f"{device}, {torch.get_num_threads()} threads")
        print(f"  bare forward:                         {bare_ips:8.1f} img/s")
        nodes = graph_nodes(model)
        cases = {
            "one late layer (layer4.2.relu_2)": ["layer4.2.relu_2"],
            "one large layer (layer1.0.relu_2, 802,816 features at 224)": ["layer1.0.relu_2"],
            "49 ReLU layers (preset:activation)": select_layers("resnet50", nodes, "preset:activation"),
        }
        results = {"bare_forward_ips": bare_ips}
        for label, chosen in cases.items():
            outputs = {layer: Path(tmp) / "acts" / f"{layer}.h5" for layer in chosen}
            t0 = time.perf_counter()
            extract_activations(spec, source, manifest, outputs, Path(tmp) / "pred.parquet", batch_size=args.batch,
                                device=device, progress=False, model=model)
            ips = len(dataset) / (time.perf_counter() - t0)
            written = sum(p.stat().st_size for p in outputs.values()) / 2**20
            ratio = ips / bare_ips
            print(f"  extraction, {label}: {ips:8.1f} img/s = {ratio:5.2f} x bare  ({written:,.0f} MiB written)")
            results[label] = {"ips": ips, "ratio": ratio, "mib_written": written}
            for p in outputs.values():
                p.unlink()
        out["extraction"] = results


MAKE_LAYER = r"""
import sys
import numpy as np, h5py
w, features, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
with h5py.File(path, "w") as f:
    d = f.create_dataset("activations", shape=(w, features), dtype=np.float32, chunks=(64, min(features, 16384)))
    for a in range(0, w, 8):
        d[a:a + 8] = np.maximum(0, rng.standard_normal(size=(min(8, w - a), features), dtype=np.float32))
"""

MEASURE = r"""
import sys, time
import numpy as np, h5py, pandas as pd
from wordlens import images
from wordlens.activations import correlate_layer
w, path = int(sys.argv[1]), sys.argv[2]
rows = [(f"i{c}", "s", "imagefolder", "val", f"{c}.png", -1, f"c{c}", c, 0) for c in range(w)]
manifest = pd.DataFrame(rows, columns=list(images.MANIFEST_COLUMNS[:-1])); manifest["row"] = np.arange(w)
with h5py.File(path, "a") as f:
    f.attrs["manifest_hash"] = images.manifest_hash(manifest)
import threading
def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
before = rss_kib(); peak = [before]; done = threading.Event()
def watch():
    while not done.is_set():
        peak[0] = max(peak[0], rss_kib()); time.sleep(0.005)
threading.Thread(target=watch, daemon=True).start()
t0 = time.perf_counter()
correlate_layer(path, manifest, 0)
seconds = time.perf_counter() - t0
done.set(); time.sleep(0.02)
print(seconds, before, peak[0])
"""


def bench_correlation(args, out: dict) -> None:
    print(f"\nCorrelation step, w = {args.w} concepts (each size in a fresh process; VmRSS sampled every 5 ms)")
    results = []
    for features in args.features:
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            subprocess.run([sys.executable, "-c", MAKE_LAYER, str(args.w), str(features), f"{tmp}/layer.h5"], check=True)
            proc = subprocess.run([sys.executable, "-c", MEASURE, str(args.w), f"{tmp}/layer.h5"],
                                  capture_output=True, text=True, check=True)
        seconds, before_kib, peak_kib = (float(x) for x in proc.stdout.split())
        size_mib = args.w * features * 4 / 2**20
        extra = (peak_kib - before_kib) / 1024
        print(f"  {features:>9,} features ({size_mib:7,.0f} MiB layer): {seconds:6.1f} s, "
              f"peak RSS during the step +{extra:5.0f} MiB (over {before_kib / 1024:4.0f} MiB of imports)")
        results.append({"features": features, "layer_mib": size_mib, "seconds": seconds,
                        "peak_extra_rss_mib": extra, "rss_before_mib": before_kib / 1024})
    growth = results[-1]["peak_extra_rss_mib"] - results[0]["peak_extra_rss_mib"]
    print(f"  peak RSS grows by {growth:.0f} MiB while the layer grows {results[-1]['layer_mib'] / results[0]['layer_mib']:.0f}x")
    out["correlation"] = results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64, help="images extracted (multiple of 10)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224, help="input size")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--w", type=int, default=838, help="concepts in the correlation step")
    parser.add_argument("--features", type=int, nargs="+", default=[50_000, 200_000, 800_000])
    parser.add_argument("--tmp", default=None, help="directory for temporary files")
    parser.add_argument("--skip-extraction", action="store_true")
    parser.add_argument("--skip-correlation", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "activations.json")
    args = parser.parse_args(argv)
    out: dict = {}
    if not args.skip_extraction:
        bench_extraction(args, out)
    if not args.skip_correlation:
        bench_correlation(args, out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
