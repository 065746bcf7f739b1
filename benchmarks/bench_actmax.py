"""Benchmark of activation maximization (wordlens.actmax).

A run's cost is ``steps`` forward+backward passes; the rest (compiling the objectives, the
feature extractor, the regulariser, the trace, Φ at the start and the end) should be
small.  This times ``activation_maximization`` (logit objectives, Adam, α-norm and total
variation regularisers, no random transform) against a baseline measured in the same run:
a bare hand-written gradient-ascent loop doing the same work — the same forward and
backward passes of the same model, the same regulariser, the same Adam step and clip.
Target: ratio ≤ 1.3.  Model: ResNet-18 (random weights) at 64² by default.

Run with ``.venv/bin/python benchmarks/bench_actmax.py`` (``--device cuda`` on a GPU).
Results are also written as JSON to ``benchmarks/out/actmax.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent

LAMBDA_TV, LAMBDA_ALPHA, ALPHA = 0.05, 0.01, 6.0


def bare_loop(model, normalize, start: torch.Tensor, classes: torch.Tensor, steps: int, lr: float,
              mean: torch.Tensor) -> torch.Tensor:
    """x ← clip(Adam step on Φ − λR), Φ = logit of each image's class, R = λ_α‖x − mean‖⁶₆ + λ_TV V²(x)."""
    x = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    rows = torch.arange(x.shape[0], device=x.device)
    for _ in range(steps):
        phi = model(normalize(x))[rows, classes]
        dx = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
        dy = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
        tv = (dx * dx + dy * dy).flatten(1).sum(1)
        alpha = (x - mean).abs().pow(ALPHA).flatten(1).sum(1)
        loss = -(phi - LAMBDA_TV * tv - LAMBDA_ALPHA * alpha).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
    return x.detach()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    from torchvision.models import resnet18

    from wordlens import actmax as am
    from wordlens.models import Preprocessing

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    parser.add_argument("--batch", type=int, default=4, help="objectives optimised as one batch (default 4)")
    parser.add_argument("--steps", type=int, default=20, help="gradient steps per run (default 20)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each (interleaved; median)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if the target is missed")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "actmax.json")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = resnet18(num_classes=10).to(device).eval()
    pre = Preprocessing(resize=None, crop=args.size)
    shape = pre.input_shape
    start = am.noise_start(args.batch, shape, pre.mean, (0.1,), seed=0).to(device)
    classes = torch.arange(args.batch, device=device) % 10
    objectives = [[am.Term("logit", index=int(c))] for c in classes.tolist()]
    cfg = am.ActMaxConfig(steps=args.steps, step_size=0.05, lambda_tv=LAMBDA_TV, lambda_alpha=LAMBDA_ALPHA,
                          alpha=ALPHA)
    mean = torch.tensor(pre.mean, device=device)[None, :, None, None]

    print(f"wordlens activation-maximization benchmark: ResNet-18 at {args.size}², batch {args.batch}, "
          f"{args.steps} steps")
    print(f"  torch {torch.__version__}, {torch.get_num_threads()} CPU threads, on {device}")

    def run_actmax():
        result = am.activation_maximization(model, pre.normalize, objectives, start, cfg, device=device)
        sync(device)
        return result

    def run_bare():
        for p in model.parameters():  # the weights are frozen in both (no parameter gradients)
            p.requires_grad_(False)
        try:
            x = bare_loop(model, pre.normalize, start, classes, args.steps, cfg.step_size, mean)
        finally:
            for p in model.parameters():
                p.requires_grad_(True)
        sync(device)
        return x

    ours, bare = run_actmax(), run_bare()  # warm-up, and the two agree
    agree = float((ours.images.to(device) - bare).abs().max())
    base, timed = [], []
    for _ in range(args.repeats):  # interleaved, so drifts hit both alike
        t0 = time.perf_counter()
        run_bare()
        base.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        run_actmax()
        timed.append(time.perf_counter() - t0)
    b, a = float(np.median(base)), float(np.median(timed))
    # The ratio of each adjacent (bare, actmax) pair, then the median: a burst of load from
    # other processes hits both runs of a pair, not one side of a ratio of medians.
    ratio = float(np.median(np.asarray(timed) / np.asarray(base)))
    ratio_min = min(timed) / min(base)
    print(f"  bare loop:                  {b:8.3f} s   ({b / args.steps * 1e3:.1f} ms/step; "
          f"median of {args.repeats})")
    print(f"  activation_maximization:    {a:8.3f} s   ({a / args.steps * 1e3:.1f} ms/step)")
    print(f"  max |difference| of the images: {agree:.2e}")
    print(f"  ratio actmax / bare loop:   {ratio:8.3f}x   (median of the pairs' ratios; target <= 1.3x)")
    print(f"  ratio of the fastest runs:  {ratio_min:8.3f}x")
    ok = ratio <= 1.3 and agree < 1e-3
    print("\nall targets met" if ok else "\nTARGET MISSED")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "model": "resnet18", "size": args.size, "batch": args.batch, "steps": args.steps,
        "device": str(device), "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "bare_s": b, "actmax_s": a, "ratio": ratio, "ratio_fastest": ratio_min, "max_abs_difference": agree,
        "targets_met": ok, "bare_runs_s": base, "actmax_runs_s": timed,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written {args.out}")
    return 1 if (args.strict and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
