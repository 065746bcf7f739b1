"""Rule sample_images: sample k images per concept into k groups (the manifest) (wordlens.stages.data.sample_images)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import data, setup  # noqa: E402

setup(snakemake)
o, p, w = snakemake.output, snakemake.params, snakemake.wildcards
data.sample_images(
    image_set_name=w.image_set, image_set=p.image_set, manifest=o.manifest,
    images_per_concept=p.images_per_concept, seed=p.seed, on_error=p.on_error, class_file=p.class_file,
)
