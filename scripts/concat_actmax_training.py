"""Rule concat_actmax_training: the actmax training tables as one (wordlens.stages.visualize.concat_actmax_training)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import visualize, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
visualize.concat_actmax_training(
    tables=list(i.tables), table=o.table,
)
