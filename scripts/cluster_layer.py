"""Rule cluster_layer: representative vectors and the category hierarchy of one layer (wordlens.stages.clustering.cluster_layer)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import clustering, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
clustering.cluster_layer(
    manifest=i.manifest, h5=i.h5, concept_table=i.concept_table, vectors=o.vectors, newick=o.newick,
    json=o.json, representation=p.representation, distance=p.distance, linkage=p.linkage,
    keep_vectors=p.keep_vectors, model=w.model, image_set=w.image_set, layer=w.layer,
)
