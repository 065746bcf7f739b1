"""Snakemake adapter: a training run's log joined with 2 vs. 2 per checkpoint."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import snakemake_setup, training_table_stage  # noqa: E402

snakemake_setup(snakemake)
training_table_stage(snakemake.wildcards.run, snakemake.input.log, snakemake.params.epochs,
                     list(snakemake.input.tables), snakemake.output.table, snakemake.params.permuted)
