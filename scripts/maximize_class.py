"""Rule maximize_class: activation maximization of one class (wordlens.stages.visualize.maximize_class)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import visualize, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
visualize.maximize_class(
    manifest=i.manifest, model_name=w.model, model=p.model, image_set_name=w.image_set,
    image_set=p.image_set, class_file=p.class_file, cls=int(w.cls), starts=p.starts, actmax=p.actmax,
    seed=p.seed, images=o.images, device=p.device,
)
