"""Rule concat_mistakes: every analysis's mistakes as one table (wordlens.stages.misclassified.concat_mistakes)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import misclassified, setup  # noqa: E402

setup(snakemake)
i, o, p = snakemake.input, snakemake.output, snakemake.params
misclassified.concat_mistakes(
    tables=list(i.tables), labels=p.labels, table=o.table,
)
