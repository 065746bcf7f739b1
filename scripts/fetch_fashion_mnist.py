"""Snakemake adapter: obtain Fashion-MNIST."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.pipeline import fetch_stage, snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
fetch_stage(snakemake.params.root)
