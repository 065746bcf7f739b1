"""Rule plot_training: error and 2 vs. 2 over training epochs (wordlens.stages.figures.plot_training)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import figures, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
figures.plot_training(
    table=i.table, pdf=o.pdf, png=o.png,
)
