"""Rule concat_two_vs_two: the 2 vs. 2 tables of every analysis as one (wordlens.stages.two_vs_two.concat_two_vs_two)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import two_vs_two, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
two_vs_two.concat_two_vs_two(
    tables=list(i.tables), table=o.table,
)
