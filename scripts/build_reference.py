"""Rule build_reference: a reference taxonomy over the image set's concepts (wordlens.stages.clustering.build_reference)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import clustering, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
clustering.build_reference(
    kind=p.kind, manifest=i.manifest, image_set_name=w.image_set, reference=o.reference, newick=o.newick,
    json=o.json, distance=p.distance, tree_distance=p.tree_distance, linkage=p.linkage, name=w.reference,
    concept_table=i.get("concept_table"), data_noun=i.get("data_noun"), hierarchy=i.get("hierarchy"),
)
