"""Rule plot_misclassified: 1 vs. 2 of the misclassified images through the layers (wordlens.stages.figures.plot_misclassified)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import figures, setup  # noqa: E402

setup(snakemake)
i, o, w = snakemake.input, snakemake.output, snakemake.wildcards
figures.plot_misclassified(
    tables=list(i.tables), pdf=o.pdf, png=o.png, model=w.model,
)
