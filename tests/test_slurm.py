"""The tiny workflow on a real single-node SLURM (started by tests/slurm/start.sh as root
on Debian; `.ci/run` does that before `make test`). Skipped, with the reason, elsewhere."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_data import tiny_workdir

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("WORDLENS_SLURM_STATE", "/tmp/wordlens-slurm"))


def slurm_unavailable() -> str | None:
    if shutil.which("sbatch") is None or shutil.which("sacct") is None:
        return "SLURM is not installed (as root on Debian/Ubuntu, run tests/slurm/start.sh first)"
    if not (STATE / "ready").exists():
        return f"no test SLURM is running ({STATE / 'ready'} missing; run tests/slurm/start.sh as root)"
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    if proc.returncode != 0 or "idle" not in proc.stdout and "mix" not in proc.stdout:
        return f"the SLURM node is not available: {proc.stdout.strip() or proc.stderr.strip()}"
    return None


pytestmark = pytest.mark.skipif(slurm_unavailable() is not None, reason=str(slurm_unavailable()))


def test_tiny_workflow_runs_every_job_as_a_completed_slurm_job(tmp_path):
    wd = tiny_workdir(tmp_path / "wd", with_training=False)
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    profile.update({"jobs": 4, "latency-wait": 5, "retries": 0, "slurm-init-seconds-before-status-checks": 2,
                    "slurm-keep-successful-logs": True})
    profile["default-resources"] = {"slurm_partition": "debug", "slurm_account": "root", "runtime": 10,
                                    "mem_mb": 800}
    profile["set-resources"] = {rule: {"gpu": 0, "mem_mb": 800} for rule in ("extract_activations", "predict_classes")}
    profile.pop("set-threads", None)
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    cmd = ["timeout", "-k", "20", "900", sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(wd), "--workflow-profile", str(tmp_path / "profile"), "two_vs_two"]
    proc = subprocess.run(cmd, cwd=wd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (wd / "results/tables/two_vs_two.parquet").exists()

    # Every non-local job ran as its own SLURM job, and accounting says COMPLETED.
    logs = list((wd / ".snakemake" / "slurm_logs").rglob("*.log"))
    job_ids = sorted({int(p.stem) for p in logs if p.stem.isdigit()})
    remote_jobs = int(re.search(r"(\d+) of \d+ steps \(100%\) done", proc.stdout + proc.stderr).group(1))
    local = {"gather_two_vs_two", "concat_two_vs_two", "concat_concepts", "two_vs_two"}
    n_local = sum((proc.stdout + proc.stderr).count(f"localrule {r}:") for r in local)
    assert len(job_ids) == remote_jobs - n_local > 10
    sacct = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(map(str, job_ids))],
                           capture_output=True, text=True, check=True)
    states = dict(line.split("|") for line in sacct.stdout.split())
    assert {int(k) for k in states} == set(job_ids)
    assert set(states.values()) == {"COMPLETED"}, states
