"""Snakemake adapter: word-space cosine of the mistakes, per network."""
import sys

import pandas as pd

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.figures import plot_mistake_cosines  # noqa: E402
from wordlens.pipeline import snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
plot_mistake_cosines(pd.read_parquet(snakemake.input.table), list(snakemake.output))
