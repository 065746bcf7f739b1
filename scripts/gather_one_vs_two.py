"""Snakemake adapter: p-values and BHY across layers and blocks (tidy 1 vs. 2 table)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import one_vs_two_gather_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
p = snakemake.params
nulls = {layer: [f for f in snakemake.input.nulls if f"/{layer}/null/" in f] for layer in p.layers}
one_vs_two_gather_stage(p.layers, dict(zip(p.layers, p.blocks)), list(snakemake.input.inputs), nulls, snakemake.output.table,
                        snakemake.wildcards.model, snakemake.wildcards.ds, snakemake.wildcards.image_set,
                        p.n_permutations, p.alpha, group=p.get("group", "mistakes"))
