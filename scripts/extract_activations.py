"""Rule extract_activations: one layer's activations (HDF5) (wordlens.stages.extract.extract_activations)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import extract, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
extract.extract_activations(
    model_name=w.model, model=p.model, image_set_name=w.image_set, image_set=p.image_set,
    manifest=i.manifest, layer=w.layer, h5=o.h5, batch_size=p.batch_size, device=p.device,
    storage_dtype=p.storage_dtype, compression=p.compression, num_workers=p.num_workers,
)
