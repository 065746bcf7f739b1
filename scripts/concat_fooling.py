"""Rule concat_fooling: the fooling tables as one (wordlens.stages.visualize.concat_fooling)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import visualize, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
visualize.concat_fooling(
    tables=list(i.tables), table=o.table,
)
