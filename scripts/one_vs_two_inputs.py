"""Snakemake adapter: the 1 vs. 2 matrices and observed outcome of one layer."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import one_vs_two_inputs_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
# Misclassified images (rule one_vs_two_inputs) or adversarial images tested against
# clean reference images (rule adversarial_inputs).
tests = snakemake.input.get("mistakes") or snakemake.input.tests
one_vs_two_inputs_stage(tests, snakemake.input.h5, snakemake.input.table, snakemake.output.inputs,
                        reference_h5=snakemake.input.get("reference_h5"))
