"""Rule gather_clustering: p-values and BHY across layers (tidy agreement table) (wordlens.stages.clustering.gather_clustering)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import clustering, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
clustering.gather_clustering(
    layers=p.layers, blocks=p.blocks, observed=list(i.observed), nulls=list(i.nulls), table=o.table,
    model=w.model, image_set=w.image_set, reference=w.reference, n_permutations=p.n_permutations, alpha=p.alpha,
)
