"""Rule fetch_fashion_mnist: obtain Fashion-MNIST (wordlens.stages.data.fetch_fashion_mnist)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import data, setup  # noqa: E402

setup(snakemake)
p = snakemake.params
data.fetch_fashion_mnist(
    root=p.root,
)
