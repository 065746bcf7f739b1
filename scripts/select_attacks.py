"""Rule select_attacks: source images and targets of the targeted attacks (wordlens.stages.adversarial.select_attacks)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import adversarial, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
adversarial.select_attacks(
    predictions=i.predictions, concept_tables=list(i.concept_tables), attacks=o.attacks,
    image_set_name=w.image_set, image_set=p.image_set, class_file=p.class_file, n_sources=p.n_sources,
    n_targets=p.n_targets, sources_per_job=p.sources_per_job, seed=p.seed,
)
