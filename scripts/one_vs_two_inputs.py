"""Snakemake adapter: the 1 vs. 2 matrices and observed outcome of one layer."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import one_vs_two_inputs_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
one_vs_two_inputs_stage(snakemake.input.mistakes, snakemake.input.h5, snakemake.input.table,
                        snakemake.output.inputs)
