"""Rule concat_attacks: the attack tables as one (wordlens.stages.adversarial.concat_attacks)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import adversarial, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
adversarial.concat_attacks(
    tables=list(i.tables), table=o.table,
)
