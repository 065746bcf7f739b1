"""Rule gather_two_vs_two: p-values and BHY across layers (tidy 2 vs. 2 table) (wordlens.stages.two_vs_two.gather_two_vs_two)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import two_vs_two, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
two_vs_two.gather_two_vs_two(
    layers=p.layers, blocks=p.blocks, observed=list(i.observed), nulls=list(i.nulls),
    table=o.table, model=w.model, ds_model=w.ds, image_set=w.image_set, n_permutations=p.n_permutations,
    alpha=p.alpha,
)
