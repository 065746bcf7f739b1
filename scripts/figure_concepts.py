"""Snakemake adapter: best and worst represented concepts at one layer."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.figures import concepts_figure_stage  # noqa: E402
from wordlens.pipeline import snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
w = snakemake.wildcards
concepts_figure_stage(snakemake.input.per_concept, snakemake.input.concept_table, list(snakemake.output),
                      title=f"{w.model}, layer {snakemake.params.layer} ({w.ds}, {w.image_set})")
