"""Rule plot_noise_taxonomy: the hierarchy and MST with a noise category (wordlens.stages.clustering.plot_noise_taxonomy)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import clustering, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
clustering.plot_noise_taxonomy(
    vectors=i.vectors, noise=i.noise, concept_table=i.concept_table, dendrogram=o.dendrogram,
    dendrogram_pdf=o.dendrogram_pdf, mst=o.mst, mst_svg=o.mst_svg, distance=p.distance, linkage=p.linkage,
    max_leaves=p.max_leaves, model=w.model, layer=w.layer,
)
