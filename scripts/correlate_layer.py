"""Snakemake adapter: concept correlation matrices of one layer, one per image group."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import correlation_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
correlation_stage(snakemake.input.h5, snakemake.input.manifest, list(snakemake.output.corr),
                  device=snakemake.params.device)
