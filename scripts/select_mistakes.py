"""Rule select_mistakes: misclassified images and their reference concepts (wordlens.stages.misclassified.select_mistakes)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import misclassified, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
misclassified.select_mistakes(
    manifest=i.manifest, predictions=i.predictions, concept_table=i.concept_table,
    other_tables=list(i.other_tables), mistakes=o.mistakes, n_reference=p.n_reference, seed=p.seed,
    image_set_name=w.image_set, image_set=p.image_set, class_file=p.class_file,
)
