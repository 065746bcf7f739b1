"""Rule permute_adversarial: one chunk of the adversarial 1 vs. 2 null of one layer (wordlens.stages.adversarial.permute_adversarial)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import adversarial, setup  # noqa: E402

setup(snakemake)
i, o, p = snakemake.input, snakemake.output, snakemake.params
adversarial.permute_adversarial(
    observed=i.observed, null=o.null, start=p.start, stop=p.stop, seed=p.seed,
    device=p.device, dtype=p.dtype,
)
