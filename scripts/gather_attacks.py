"""Snakemake adapter: all attacks of a model and image set; the adversarial image set."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import gather_attacks_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
out = snakemake.output
gather_attacks_stage(list(snakemake.input.images), list(snakemake.input.tables), snakemake.params.adv_set, out.images,
                     out.table, out.manifest, out.grid, snakemake.wildcards.model, snakemake.wildcards.image_set,
                     grid_sources=snakemake.params.grid_sources, concept_table=snakemake.input.concept_table)
