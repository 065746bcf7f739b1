"""Rule plot_training_classes: activation maximization through training as one grid (wordlens.stages.visualize.plot_training_classes)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import visualize, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
visualize.plot_training_classes(
    images=list(i.images), manifest=i.manifest, concept_table=i.concept_table,
    image_set_name=p.image_set_name, image_set=p.image_set, seed=p.seed, png=o.png, table=o.table, run=w.run,
)
