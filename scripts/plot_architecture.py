"""Rule plot_architecture: the annotated architecture diagram of one model (wordlens.stages.figures.plot_architecture)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import figures, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
figures.plot_architecture(
    table=i.table, svg=o.svg, pdf=o.pdf, png=o.png, model_cfg=p.model, model=w.model,
    image_set=w.image_set, ds=w.ds,
)
