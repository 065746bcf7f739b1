"""Config checks beyond Snakemake's schema validation (wordlens.config), on the real schema."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from wordlens.config import ConfigError, check_config

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())


@pytest.fixture
def config():
    """The shipped demo config with the defaults the workflow fills in for the sections used here."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg.setdefault("adversarial", {}).setdefault("clip_min", 0.0)
    cfg["adversarial"].setdefault("clip_max", 1.0)
    cfg["adversarial"].setdefault("ds_model", None)
    return cfg


def test_the_demo_config_passes(config):
    check_config(config, SCHEMA)


@pytest.mark.parametrize("path, value, message", [
    (("stats", "n_permutations"), 40.0, "stats.n_permutations must be an integer; got 40.0 (write 40)"),
    (("sampling", "images_per_concept"), 3.0, "sampling.images_per_concept must be an integer"),
    (("stats", "chunk_size"), 2.5, "stats.chunk_size must be an integer; got 2.5"),
    (("stats", "seed"), True, "stats.seed"),
])
def test_integers_must_be_written_as_integers(config, path, value, message):
    cfg = copy.deepcopy(config)
    cfg[path[0]][path[1]] = value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_config(cfg, SCHEMA)


@pytest.mark.parametrize("pre, key", [({"crop": "32"}, "crop"), ({"resize": 1.5}, "resize"),
                                      ({"crop": 32, "colour": 1}, "colour"), ({"channels": 2}, "channels"),
                                      ({"std": [0.5, 0]}, "std")])
def test_model_preprocessing_is_validated(config, pre, key):
    cfg = copy.deepcopy(config)
    name = next(iter(cfg["training"]["runs"]))
    cfg["training"]["runs"][name]["model"]["preprocessing"] = pre
    with pytest.raises(ConfigError, match=f"training.runs.{name}.model.preprocessing"):
        check_config(cfg, SCHEMA)
    cfg = copy.deepcopy(config)
    cfg["models"] = {"m": {"arch": "resnet18", "image_sets": [next(iter(cfg["image_sets"]))], "layers": ["fc"],
                           "preprocessing": pre}}
    with pytest.raises(ConfigError, match=f"models.m.preprocessing.*{key}|{key}.*models.m.preprocessing"):
        check_config(cfg, SCHEMA)


def test_names_must_refer_to_configured_things(config):
    cfg = copy.deepcopy(config)
    cfg["models"] = {"m": {"arch": "resnet18", "image_sets": ["nowhere"], "layers": ["fc"]}}
    with pytest.raises(ConfigError, match="models.m.image_sets names 'nowhere'"):
        check_config(cfg, SCHEMA)
    cfg = copy.deepcopy(config)
    cfg["training"]["ds_models"] = ["glove"]
    with pytest.raises(ConfigError, match="training.ds_models names 'glove'"):
        check_config(cfg, SCHEMA)
    cfg = copy.deepcopy(config)
    cfg["adversarial"].update(clip_min=1.0, clip_max=0.0)
    with pytest.raises(ConfigError, match="clip_min"):
        check_config(cfg, SCHEMA)
