"""Rule plot_mistake_cosines: word-space cosine of the mistakes, per network (wordlens.stages.figures.plot_mistake_cosines)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import figures, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
figures.plot_mistake_cosines(
    table=i.table, pdf=o.pdf, png=o.png,
)
