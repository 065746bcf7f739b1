"""Rule fool_images: fooling: ascend another class's logit from real images (wordlens.stages.visualize.fool_images)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import visualize, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
visualize.fool_images(
    manifest=i.manifest, model_name=w.model, model=p.model, image_set_name=w.image_set,
    image_set=p.image_set, class_file=p.class_file, classes=p.classes, gradcam_layer=p.gradcam_layer,
    learning_rates=p.learning_rates, steps=p.steps, concept_table=i.concept_table, table=o.table,
    panel=o.panel, curve=o.curve, device=p.device,
)
