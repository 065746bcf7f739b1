"""Rule plot_taxonomy: dendrogram, MST and UMAP maps of one layer (wordlens.stages.clustering.plot_taxonomy)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import clustering, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
clustering.plot_taxonomy(
    vectors=i.vectors, h5=i.h5, manifest=i.manifest, concept_table=i.concept_table, dendrogram=o.dendrogram,
    dendrogram_pdf=o.dendrogram_pdf, mst=o.mst, mst_svg=o.mst_svg, umap=o.umap, max_leaves=p.max_leaves,
    seed=p.seed, model=w.model, layer=w.layer,
)
