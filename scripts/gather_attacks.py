"""Rule gather_attacks: all attacks of a model and image set; the adversarial image set (wordlens.stages.adversarial.gather_attacks)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import adversarial, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
adversarial.gather_attacks(
    chunk_images=list(i.chunk_images), chunk_tables=list(i.chunk_tables),
    concept_table=i.concept_table, images=o.images, table=o.table, manifest=o.manifest, grid=o.grid,
    adv_set=p.adv_set, model=w.model, image_set=w.image_set, grid_sources=p.grid_sources,
)
