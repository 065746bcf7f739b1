"""Rule concat_concepts: one table of the concept matches of every (image set, DS model) (wordlens.stages.data.concat_concepts)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import data, setup  # noqa: E402

setup(snakemake)
i, o, p = snakemake.input, snakemake.output, snakemake.params
data.concat_concepts(
    summaries=list(i.summaries), image_sets=p.image_sets, table=o.table,
)
