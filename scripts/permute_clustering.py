"""Rule permute_clustering: a chunk of the agreement null (wordlens.stages.clustering.permute_clustering)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import clustering, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
clustering.permute_clustering(
    vectors=i.vectors, reference=i.reference, null=o.null, linkage=p.linkage, cuts=p.cuts, start=p.start,
    stop=p.stop, seed=p.seed,
)
