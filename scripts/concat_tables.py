"""Snakemake adapter: concatenate tidy tables."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import concat_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
concat_stage(list(snakemake.input.tables), snakemake.output.table,
             extra=getattr(snakemake.params, "label_columns", None))
