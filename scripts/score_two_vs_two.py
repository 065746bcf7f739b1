"""Rule score_two_vs_two: observed 2 vs. 2 of one layer (wordlens.stages.two_vs_two.score_two_vs_two)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import two_vs_two, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
two_vs_two.score_two_vs_two(
    corr=list(i.corr), concept_table=i.concept_table, other_tables=list(i.other_tables),
    observed=o.observed, concepts=o.concepts,
)
