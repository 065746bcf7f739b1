"""Rule represent_noise: the noise pseudo-category's representative vector (wordlens.stages.clustering.represent_noise)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import clustering, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
clustering.represent_noise(
    manifest=i.manifest, model_name=w.model, model=p.model, image_set_name=w.image_set, image_set=p.image_set,
    layer=w.layer, representation=p.representation, n=p.n, seed=p.seed, vector=o.vector, device=p.device,
)
