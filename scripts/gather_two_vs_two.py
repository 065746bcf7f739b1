"""Snakemake adapter: p-values and BHY across layers (tidy 2 vs. 2 table)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import snakemake_setup, two_vs_two_gather_stage  # noqa: E402

snakemake_setup(snakemake)
layers = snakemake.params.layers
nulls = {layer: [p for p in snakemake.input.nulls if f"/{layer}/null/" in p] for layer in layers}
two_vs_two_gather_stage(layers, dict(zip(layers, snakemake.params.blocks)), list(snakemake.input.observed), nulls,
                        snakemake.output.table, snakemake.wildcards.model, snakemake.wildcards.ds,
                        snakemake.wildcards.image_set, snakemake.params.n_permutations, snakemake.params.alpha)
