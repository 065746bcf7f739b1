"""Rule concat_training: the training runs' tables as one (wordlens.stages.training.concat_training)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import training, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
training.concat_training(
    tables=list(i.tables), table=o.table,
)
