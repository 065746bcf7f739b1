"""Snakemake adapter: the annotated architecture diagram of one model."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.figures import architecture_figure_stage  # noqa: E402
from wordlens.pipeline import snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
w = snakemake.wildcards
architecture_figure_stage(snakemake.input.table, list(snakemake.output), snakemake.params.model,
                          title=f"{w.model}: 2 vs. 2 accuracy per analysed layer ({w.ds}, {w.image_set})")
