"""Rule explain_mistakes: Grad-CAM of the true and predicted class of misclassified images (wordlens.stages.visualize.explain_mistakes)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import visualize, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
visualize.explain_mistakes(
    manifest=i.manifest, predictions=i.predictions, model_name=w.model, model=p.model,
    image_set_name=w.image_set, image_set=p.image_set, class_file=p.class_file,
    gradcam_layer=p.gradcam_layer, n=p.n, concept_table=i.concept_table, png=o.png, device=p.device,
)
