"""Rule gather_training: a training run's log joined with 2 vs. 2 per checkpoint (wordlens.stages.training.gather_training)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import training, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
training.gather_training(
    run=w.run, log=i.log, epochs=p.epochs, tables=list(i.tables), table=o.table,
    permuted=p.permuted,
)
