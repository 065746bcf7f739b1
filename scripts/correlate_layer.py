"""Rule correlate_layer: concept correlation matrices of one layer, one per image group (wordlens.stages.correlate.correlate_layer)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import correlate, setup  # noqa: E402

setup(snakemake)
i, o, p = snakemake.input, snakemake.output, snakemake.params
correlate.correlate_layer(
    h5=i.h5, manifest=i.manifest, corr=list(o.corr), device=p.device,
)
