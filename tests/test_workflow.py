"""The Snakemake workflow: lint and config validation (pytest calls `python -m snakemake`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def snakemake(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "1", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_lint_is_clean():
    proc = snakemake("--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bad_config_key_stops_the_run_naming_it(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stats:\n  n_permutation: 10\n")
    proc = snakemake("-n", "--configfile", str(bad), "--directory", str(tmp_path), cwd=tmp_path)
    assert proc.returncode != 0
    assert "n_permutation" in proc.stdout + proc.stderr


def test_bad_config_value_stops_the_run_naming_it(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stats:\n  alpha: 2\n")
    proc = snakemake("-n", "--configfile", str(bad), "--directory", str(tmp_path), cwd=tmp_path)
    assert proc.returncode != 0
    assert "alpha" in proc.stdout + proc.stderr
