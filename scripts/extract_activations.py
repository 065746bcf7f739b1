"""Snakemake adapter: one layer's activations (HDF5)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import activations_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
p = snakemake.params
activations_stage(snakemake.wildcards.model, p.model, snakemake.wildcards.image_set, p.image_set,
                  snakemake.input.manifest, snakemake.wildcards.layer, snakemake.output.h5, batch_size=p.batch_size,
                  device=p.device, storage_dtype=p.storage_dtype, compression=p.compression,
                  num_workers=p.num_workers)
