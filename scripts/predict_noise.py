"""Rule predict_noise: out-of-sample predictions: image sets and noise images (wordlens.stages.visualize.predict_noise)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import visualize, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
visualize.predict_noise(
    predictions=list(i.predictions), sources=p.sources, manifest=i.manifest, model_name=w.model,
    model=p.model, image_set_name=p.image_set_name, image_set=p.image_set, class_file=p.class_file, n=p.n,
    seed=p.seed, table=o.table, png=o.png, device=p.device,
)
