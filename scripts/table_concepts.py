"""Snakemake adapter: one table of the concept matches of every (image set, DS model)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import concat_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
concat_stage(snakemake.input.summaries, snakemake.output.table, extra={"image_set": snakemake.params.image_sets})
