"""Rule fetch_wordnet: WordNet 3.0's database files (wordlens.stages.clustering.fetch_wordnet)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import clustering, setup  # noqa: E402

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
clustering.fetch_wordnet(
    root=p.root, data_noun=o.data_noun,
)
