# Helpers shared by all stages (config validation, target lists).
from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")


def get_final_output():
    """Every file the default target asks for (filled in as the stages arrive)."""
    return []
