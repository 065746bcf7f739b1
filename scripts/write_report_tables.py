"""Rule write_report_tables: compact CSV tables for the HTML report (wordlens.stages.figures.write_report_tables)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")
from wordlens.stages import figures, setup  # noqa: E402

setup(snakemake)
i, o = snakemake.input, snakemake.output
figures.write_report_tables(
    inputs=dict(i.items()), outputs=dict(o.items()),
)
