"""Rule score_clustering: observed agreement of one layer's hierarchy with a reference (wordlens.stages.clustering.score_clustering)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import clustering, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
clustering.score_clustering(
    vectors=i.vectors, reference=i.reference, observed=o.observed, linkage=p.linkage, cuts=p.cuts,
)
