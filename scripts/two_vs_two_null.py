"""Snakemake adapter: one chunk of the 2 vs. 2 permutation null of one layer."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import snakemake_setup, two_vs_two_null_stage  # noqa: E402

snakemake_setup(snakemake)
start, stop = snakemake.params.perms
two_vs_two_null_stage(list(snakemake.input.corr), snakemake.input.table, snakemake.output.null, start, stop,
                      snakemake.params.seed, device=snakemake.params.device, dtype=snakemake.params.dtype,
                      intersect_with=list(snakemake.input.others))
