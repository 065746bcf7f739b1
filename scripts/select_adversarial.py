"""Rule select_adversarial: the 1 vs. 2 test cases of the successful adversarial images (wordlens.stages.adversarial.select_adversarial)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import adversarial, setup  # noqa: E402

setup(snakemake)
i, o, p = snakemake.input, snakemake.output, snakemake.params
adversarial.select_adversarial(
    manifest=i.manifest, predictions=i.predictions, concept_table=i.concept_table,
    other_tables=list(i.other_tables), tests=o.tests, n_reference=p.n_reference, seed=p.seed,
)
