"""Snakemake adapter: observed 2 vs. 2 of one layer."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import snakemake_setup, two_vs_two_observed_stage  # noqa: E402

snakemake_setup(snakemake)
two_vs_two_observed_stage(list(snakemake.input.corr), snakemake.input.table, snakemake.output.observed,
                          snakemake.output.concepts, intersect_with=list(snakemake.input.others))
