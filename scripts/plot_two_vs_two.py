"""Rule plot_two_vs_two: 2 vs. 2 through the layers of one model (wordlens.stages.figures.plot_two_vs_two)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import figures, setup  # noqa: E402

setup(snakemake)
i, o, w = snakemake.input, snakemake.output, snakemake.wildcards
figures.plot_two_vs_two(
    tables=list(i.tables), pdf=o.pdf, png=o.png, model=w.model,
)
