"""Rule grow_prediction_tree: Dai's filter prediction tree of one class (wordlens.stages.clustering.grow_prediction_tree)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import clustering, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
clustering.grow_prediction_tree(
    manifest=i.manifest, h5=i.h5, concept_table=i.concept_table, image_set_name=w.image_set,
    image_set=p.image_set, class_file=p.class_file, cls=int(w.cls), layer=p.layer, top_images=p.top_images,
    json=o.json, png=o.png, svg=o.svg, model=w.model,
)
