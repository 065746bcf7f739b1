"""Rule maximize_checkpoints: activation maximization of one class at every checkpoint of a run (wordlens.stages.visualize.maximize_checkpoints)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import visualize, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
visualize.maximize_checkpoints(
    checkpoints=list(i.checkpoints), manifest=i.manifest, models=p.models, epochs=p.epochs,
    image_set_name=p.image_set_name, image_set=p.image_set, cls=int(w.cls), actmax=p.actmax, seed=p.seed,
    images=o.images, device=p.device,
)
