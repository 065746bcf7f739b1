"""Snakemake adapter: misclassified images and their reference concepts."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import class_ids_for, mistakes_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
p = snakemake.params
mistakes_stage(snakemake.input.manifest, snakemake.input.predictions, snakemake.input.table,
               snakemake.output.mistakes, p.n_reference, p.seed, class_ids_for(p.image_set, p.class_file),
               intersect_with=list(snakemake.input.others))
