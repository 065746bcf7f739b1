"""Snakemake adapter: 1 vs. 2 through the layers (misclassified or adversarial images)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.figures import one_vs_two_figure_stage  # noqa: E402
from wordlens.pipeline import snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
w = snakemake.wildcards
tables = snakemake.input.tables
tables = [tables] if isinstance(tables, str) else list(tables)
if snakemake.rule == "figure_adversarial":
    one_vs_two_figure_stage(tables, list(snakemake.output), by="group",
                            title=f"{w.model}: targeted adversarial images, 1 vs. 2 per similarity of the target "
                                  f"({w.ds}, {w.image_set})")
else:
    one_vs_two_figure_stage(tables, list(snakemake.output), by="ds_model",
                            title=f"{w.model}: misclassified images, 1 vs. 2 (true vs. predicted class)")
