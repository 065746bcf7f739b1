# The configuration: validated against the schema (defaults filled in), integers and
# cross-references checked (wordlens.config), and the names the other files use.
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from wordlens.config import ConfigError, check_config, check_types


SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"
try:
    validate(config, schema="../../schemas/config.schema.yaml")
except WorkflowError:
    # Snakemake's message names the key as instance['a']['b']; ours says a.b and what is valid.
    try:
        check_types(config, SCHEMA)
    except ConfigError as err:
        raise WorkflowError(str(err)) from None
    raise
try:
    check_config(config, SCHEMA)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

IMAGE_SETS = config["image_sets"]
DS_MODELS = config["ds_models"]
MODELS = config.get("models", {})
TRAINING = config["training"]
RUNS = TRAINING.get("runs", {})
STATS = config["stats"]
ADVERSARIAL = config["adversarial"]
GROUPS = list(range(config["sampling"]["images_per_concept"]))


def config_error(message):
    raise WorkflowError(f"config: {message}")
