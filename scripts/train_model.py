"""Snakemake adapter: train one run, writing its checkpoints and log."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import snakemake_setup, train_stage  # noqa: E402

snakemake_setup(snakemake)
p = snakemake.params
train_stage(p.run, p.run_cfg, tuple(p.train_set), tuple(p.test_set), p.checkpoint_dir, snakemake.output.log,
            device=p.device)
