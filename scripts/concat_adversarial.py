"""Rule concat_adversarial: the adversarial 1 vs. 2 tables as one (wordlens.stages.adversarial.concat_adversarial)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import adversarial, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
adversarial.concat_adversarial(
    tables=list(i.tables), table=o.table,
)
