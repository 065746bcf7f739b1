"""Rule plot_clustering: the agreement curve through the layers beside 2 vs. 2 (wordlens.stages.clustering.plot_clustering)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import clustering, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
clustering.plot_clustering(
    tables=list(i.tables), two_vs_two=list(i.two_vs_two), png=o.png, pdf=o.pdf, model=w.model,
)
