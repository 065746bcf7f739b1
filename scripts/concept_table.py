"""Snakemake adapter: the concept table of an image set in a DS model."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import concept_table_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
concept_table_stage(snakemake.params.image_set, snakemake.wildcards.ds, snakemake.params.ds, snakemake.output.table,
                    snakemake.output.summary, class_file=snakemake.params.class_file,
                    cache_dir=snakemake.params.cache_dir, device=snakemake.params.device)
