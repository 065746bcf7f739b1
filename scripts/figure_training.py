"""Snakemake adapter: error and 2 vs. 2 over training epochs."""
import sys

import pandas as pd

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.figures import plot_training  # noqa: E402
from wordlens.pipeline import snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
plot_training(pd.read_parquet(snakemake.input.table), list(snakemake.output))
