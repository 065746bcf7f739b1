"""Snakemake adapter: a model's predictions on an image set."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import predictions_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
p = snakemake.params
predictions_stage(snakemake.wildcards.model, p.model, snakemake.wildcards.image_set, p.image_set,
                  snakemake.input.manifest, snakemake.output.predictions, class_file=p.class_file,
                  batch_size=p.batch_size, device=p.device, num_workers=p.num_workers)
