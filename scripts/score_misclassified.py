"""Rule score_misclassified: the 1 vs. 2 matrices and observed outcome of one layer (wordlens.stages.misclassified.score_misclassified)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import misclassified, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
misclassified.score_misclassified(
    mistakes=i.mistakes, h5=i.h5, concept_table=i.concept_table, observed=o.observed,
)
