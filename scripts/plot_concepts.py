"""Rule plot_concepts: best and worst represented concepts at one layer (wordlens.stages.figures.plot_concepts)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import figures, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
figures.plot_concepts(
    per_concept=i.per_concept, concept_table=i.concept_table, pdf=o.pdf, png=o.png,
    model=w.model, image_set=w.image_set, ds=w.ds, layer=p.layer,
)
