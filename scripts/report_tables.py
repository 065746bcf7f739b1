"""Snakemake adapter: compact CSV tables for the HTML report."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.figures import summary_tables_stage  # noqa: E402
from wordlens.pipeline import snakemake_setup  # noqa: E402

snakemake_setup(snakemake)
i = snakemake.input
summary_tables_stage(i.get("two_vs_two"), i.get("misclassified"), i.get("adversarial"), i.get("attacks"),
                     i.concepts, {k: v for k, v in snakemake.output.items()})
