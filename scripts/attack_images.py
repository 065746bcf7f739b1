"""Rule attack_images: the targeted MIM attacks of one source chunk (wordlens.stages.adversarial.attack_images)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import adversarial, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
adversarial.attack_images(
    model_name=w.model, model=p.model, image_set_name=w.image_set, image_set=p.image_set,
    class_file=p.class_file, manifest=i.manifest, attacks=i.attacks, chunk=int(w.chunk), images=o.images,
    table=o.table, attack=p.attack, device=p.device,
)
