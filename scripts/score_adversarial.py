"""Rule score_adversarial: the 1 vs. 2 matrices of one layer: adversarial vs. clean reference images (wordlens.stages.adversarial.score_adversarial)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import adversarial, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
adversarial.score_adversarial(
    tests=i.tests, h5=i.h5, reference_h5=i.reference_h5, concept_table=i.concept_table,
    observed=o.observed,
)
