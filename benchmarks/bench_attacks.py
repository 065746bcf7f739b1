"""Benchmark of the MIM attack (wordlens.attacks).

The attack's cost is ``iterations`` forward+backward passes; everything else (per-example
normalisation, momentum, projection, clipping) should be noise.  This measures
``run_attacks`` (targeted, L∞, 20 iterations) against a baseline measured in the same run:
20 bare forward+backward passes of the same model on the same batch (input gradient
only).  Target: ratio ≤ 1.15.  Models: ResNet-18 at 112² (random weights) and the demo's
small FractalNet at 32².

Run with ``.venv/bin/python benchmarks/bench_attacks.py`` (``--device cuda`` on a GPU).
Results are also written as JSON to ``benchmarks/out/attacks.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def bare_passes(model, normalize, x, targets, iterations: int) -> None:
    for _ in range(iterations):
        xi = x.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(normalize(xi)), targets, reduction="sum")
        torch.autograd.grad(loss, xi)


def bench(name: str, spec_kwargs: dict, batch: int, repeats: int, device: torch.device) -> dict:
    from wordlens.attacks import AttackConfig, run_attacks
    from wordlens.models import ModelSpec, build_model, resolve_preprocessing

    spec = ModelSpec(name=name, **spec_kwargs)
    model = build_model(spec, device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    pre = resolve_preprocessing(spec)
    x = torch.rand(batch, *pre.input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    n_classes = model(pre.normalize(x[:1])).shape[1]
    targets = np.arange(batch) % n_classes
    t = torch.as_tensor(targets, device=device)
    cfg = AttackConfig(epsilon=0.15, iterations=20, batch_size=batch)
    run_attacks(model, pre.normalize, x, targets, cfg, device, progress=False)  # warm-up
    base, attack = [], []
    for _ in range(repeats):  # interleaved, so drifts hit both alike
        t0 = time.perf_counter()
        bare_passes(model, pre.normalize, x, t, cfg.iterations)
        if device.type == "cuda":
            torch.cuda.synchronize()
        base.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        run_attacks(model, pre.normalize, x, targets, cfg, device, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        attack.append(time.perf_counter() - t0)
    b, a = float(np.median(base)), float(np.median(attack))
    result = {"model": name, "batch": batch, "iterations": cfg.iterations, "baseline_s": b, "attack_s": a,
              "ratio": a / b, "images_per_s": batch / a}
    print(f"{name:>12}: 20 bare fwd+bwd {b:.3f} s, MIM attack {a:.3f} s → ratio {a / b:.3f} "
          f"({batch / a:.1f} images/s)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    results = [
        bench("resnet18", {"arch": "resnet18", "weights": None, "preprocessing": {"resize": 112, "crop": 112}},
              16, args.repeats, device),
        bench("fractalnet", {"arch": "fractalnet", "num_classes": 10,
                             "arch_kwargs": {"n_blocks": 3, "n_columns": 2, "channels": [16, 32, 64],
                                             "dropout": [0.0, 0.1, 0.2], "in_channels": 1},
                             "preprocessing": {"channels": 1, "crop": 32, "resize": None, "mean": [0.286],
                                               "std": [0.353]}},
              32, args.repeats, device),
    ]
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "attacks.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
