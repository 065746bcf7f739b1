"""Rule match_concepts: the concept table of an image set in a DS model (wordlens.stages.data.match_concepts)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import data, setup  # noqa: E402

setup(snakemake)
o, p, w = snakemake.output, snakemake.params, snakemake.wildcards
data.match_concepts(
    image_set_name=w.image_set, image_set=p.image_set, ds_name=w.ds, ds=p.ds,
    table=o.table, summary=o.summary, class_file=p.class_file, cache_dir=p.cache_dir, device=p.device,
)
