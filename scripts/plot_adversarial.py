"""Rule plot_adversarial: 1 vs. 2 of the adversarial images per similarity category (wordlens.stages.figures.plot_adversarial)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import figures, setup  # noqa: E402

setup(snakemake)
i, o, w = snakemake.input, snakemake.output, snakemake.wildcards
figures.plot_adversarial(
    table=i.table, pdf=o.pdf, png=o.png, model=w.model, image_set=w.image_set, ds=w.ds,
)
