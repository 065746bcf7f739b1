"""Snakemake adapter: the targeted MIM attacks of one source chunk."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import attack_stage, class_ids_for, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
p = snakemake.params
settings = {k: p[k] for k in ("epsilon", "step_size", "iterations", "decay", "norm", "clip_min", "clip_max",
                              "batch_size")}
attack_stage(snakemake.wildcards.model, p.model, snakemake.wildcards.image_set, p.image_set, snakemake.input.manifest,
             snakemake.input.attacks, int(snakemake.wildcards.chunk), snakemake.output.images, snakemake.output.table,
             settings, class_ids_for(p.image_set, p.class_file), device=p.device)
