"""Rule visualize_layer: feature maps, projections and dataset examples of one layer (wordlens.stages.visualize.visualize_layer)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import visualize, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
visualize.visualize_layer(
    manifest=i.manifest, h5=i.h5, model_name=w.model, model=p.model, image_set_name=w.image_set,
    image_set=p.image_set, class_file=p.class_file, layer=w.layer, shape=p.shape, classes=p.classes,
    channels=p.channels, images=p.images, examples=p.examples, actmax=p.actmax, seed=p.seed,
    feature_maps=o.feature_maps, projections=o.projections, channels_png=o.channels, table=o.table,
    device=p.device,
)
