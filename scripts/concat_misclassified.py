"""Rule concat_misclassified: the misclassified images' 1 vs. 2 tables as one (wordlens.stages.misclassified.concat_misclassified)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import misclassified, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
misclassified.concat_misclassified(
    tables=list(i.tables), table=o.table,
)
