"""Rule permute_misclassified: one chunk of the 1 vs. 2 permutation null of one layer (wordlens.stages.misclassified.permute_misclassified)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import misclassified, setup  # noqa: E402

setup(snakemake)
i, o, p = snakemake.input, snakemake.output, snakemake.params
misclassified.permute_misclassified(
    observed=i.observed, null=o.null, start=p.start, stop=p.stop, seed=p.seed,
    device=p.device, dtype=p.dtype,
)
