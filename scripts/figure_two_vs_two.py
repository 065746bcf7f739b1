"""Snakemake adapter: 2 vs. 2 through the layers of one model."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.figures import two_vs_two_figure_stage  # noqa: E402
from wordlens.pipeline import snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
two_vs_two_figure_stage(list(snakemake.input.tables), list(snakemake.output), snakemake.wildcards.model)
