"""Benchmark of the workflow itself.

1. Dry-run (DAG construction) time of ``config/imagenet-paper.yaml`` — ResNet-50,
   Inception-v3 and VGG-16, every preset layer, 1000 permutations in chunks — on
   generated stand-in data, with the layer cache cold and warm.  Target: under 10 s.
2. With ``--demo``: wall time and peak memory (largest process) of the default run
   (``config.yaml``) in a fresh working directory.

Run with ``.venv/bin/python benchmarks/bench_workflow.py [--demo]``; results are also
written as JSON to ``benchmarks/out/workflow.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))


def snakemake(wd: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                           "--directory", str(wd), "--cores", "2", *args], cwd=wd, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", action="store_true", help="also time the default run (about 10 minutes)")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "workflow.json")
    args = parser.parse_args(argv)
    from workflow_data import paper_standin

    record: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        wd = paper_standin(Path(tmp))
        times = []
        for label in ("cold layer cache", "warm layer cache"):
            seconds, proc = snakemake(wd, "-n", "--configfile", str(REPO / "config/imagenet-paper.yaml"))
            if proc.returncode != 0:
                print(proc.stderr[-3000:])
                return 1
            jobs = int(re.search(r"^total\s+(\d+)", proc.stdout, re.M).group(1))
            times.append(seconds)
            print(f"dry run of config/imagenet-paper.yaml ({label}): {seconds:5.1f} s for {jobs} jobs")
        record["imagenet_dry_run"] = {"jobs": jobs, "cold_s": times[0], "warm_s": times[1], "target_s": 10}
    if args.demo:
        with tempfile.TemporaryDirectory() as tmp:
            wd = Path(tmp)
            shutil.copy(REPO / "config.yaml", wd / "config.yaml")
            seconds, proc = snakemake(wd)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            ok = proc.returncode == 0
            jobs = re.findall(r"(\d+) of (\d+) steps", proc.stdout + proc.stderr)
            print(f"default run (config.yaml): {'ok' if ok else 'FAILED'} in {seconds / 60:.1f} min, "
                  f"{jobs[-1][1] if jobs else '?'} jobs, peak memory of the largest process {peak:.0f} MiB")
            record["demo"] = {"ok": ok, "seconds": seconds, "peak_rss_mib": peak}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
