"""Rule concat_clustering: the agreement tables as one (wordlens.stages.clustering.concat_clustering)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import clustering, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
clustering.concat_clustering(
    tables=list(i.tables), table=o.table,
)
