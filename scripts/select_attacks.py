"""Snakemake adapter: source images and targets of the targeted attacks."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import class_ids_for, select_attacks_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
p = snakemake.params
select_attacks_stage(snakemake.input.predictions, list(snakemake.input.tables), snakemake.output.attacks,
                     class_ids_for(p.image_set, p.class_file), p.n_sources, p.n_targets, p.sources_per_job, p.seed)
