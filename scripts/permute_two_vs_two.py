"""Rule permute_two_vs_two: one chunk of the 2 vs. 2 permutation null of one layer (wordlens.stages.two_vs_two.permute_two_vs_two)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import two_vs_two, setup  # noqa: E402

setup(snakemake)
i, o, p = snakemake.input, snakemake.output, snakemake.params
two_vs_two.permute_two_vs_two(
    corr=list(i.corr), concept_table=i.concept_table, other_tables=list(i.other_tables),
    null=o.null, start=p.start, stop=p.stop, seed=p.seed, device=p.device, dtype=p.dtype,
)
