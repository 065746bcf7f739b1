"""Snakemake adapter: sample k images per concept into k groups (the manifest)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import manifest_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
manifest_stage(snakemake.wildcards.image_set, snakemake.params.image_set, snakemake.output.manifest,
               snakemake.params.images_per_concept, snakemake.params.seed, snakemake.params.on_error,
               class_file=snakemake.params.class_file)
