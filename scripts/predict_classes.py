"""Rule predict_classes: a model's predictions on an image set (wordlens.stages.extract.predict_classes)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import extract, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
extract.predict_classes(
    model_name=w.model, model=p.model, image_set_name=w.image_set, image_set=p.image_set,
    manifest=i.manifest, predictions=o.predictions, class_file=p.class_file, batch_size=p.batch_size,
    device=p.device, num_workers=p.num_workers,
)
