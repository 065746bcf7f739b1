"""Rule concat_out_of_sample: the out of sample tables as one (wordlens.stages.visualize.concat_out_of_sample)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import visualize, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
visualize.concat_out_of_sample(
    tables=list(i.tables), table=o.table,
)
