"""Snakemake adapter: one chunk of the 1 vs. 2 permutation null of one layer."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import one_vs_two_null_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
start, stop = snakemake.params.perms
one_vs_two_null_stage(snakemake.input.inputs, snakemake.output.null, start, stop, snakemake.params.seed,
                      device=snakemake.params.device, dtype=snakemake.params.dtype)
