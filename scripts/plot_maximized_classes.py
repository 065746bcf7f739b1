"""Rule plot_maximized_classes: the classes' activation-maximization images as one grid (wordlens.stages.visualize.plot_maximized_classes)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import visualize, setup  # noqa: E402

setup(snakemake)
i, o, w = snakemake.input, snakemake.output, snakemake.wildcards
visualize.plot_maximized_classes(
    images=list(i.images), concept_table=i.concept_table, png=o.png, table=o.table, model=w.model,
    image_set=w.image_set,
)
