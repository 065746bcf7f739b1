"""Rule explain_attacks: Grad-CAM of source and target, before and after the attacks (wordlens.stages.visualize.explain_attacks)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import visualize, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
visualize.explain_attacks(
    manifest=i.manifest, images=i.images, attacks=i.attacks, model_name=w.model, model=p.model,
    image_set_name=w.image_set, image_set=p.image_set, gradcam_layer=p.gradcam_layer, n=p.n,
    concept_table=i.concept_table, png=o.png, device=p.device,
)
