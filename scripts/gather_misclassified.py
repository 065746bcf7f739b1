"""Rule gather_misclassified: p-values and BHY across layers and blocks (tidy 1 vs. 2 table) (wordlens.stages.misclassified.gather_misclassified)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import misclassified, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
misclassified.gather_misclassified(
    layers=p.layers, blocks=p.blocks, observed=list(i.observed), nulls=list(i.nulls),
    table=o.table, model=w.model, ds_model=w.ds, image_set=w.image_set, n_permutations=p.n_permutations,
    alpha=p.alpha,
)
