"""Snakemake adapter: the 1 vs. 2 test cases of the successful adversarial images."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import adversarial_tests_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
p = snakemake.params
adversarial_tests_stage(snakemake.input.manifest, snakemake.input.predictions, snakemake.input.table,
                        snakemake.output.tests, p.n_reference, p.seed, intersect_with=list(snakemake.input.others))
