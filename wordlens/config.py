"""Checks of a workflow configuration beyond what Snakemake's schema validation does.

``snakemake.utils.validate`` (run first, in ``rules/common/config.smk``) fills in the
schema's defaults and checks types, but JSON Schema counts ``40.0`` as an integer, and
it cannot check that names refer to each other.  :func:`check_config` does both; every
message starts with ``config:`` and names the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from wordlens.naming import parse_checkpoint_model_id


class ConfigError(ValueError):
    """A configuration value that the workflow cannot use (the message names the key)."""


def _strict_validator(schema: Mapping[str, Any]):
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return validators.extend(Draft202012Validator, type_checker=checker)(schema)


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def check_types(config: Mapping[str, Any], schema: str | Path | Mapping[str, Any]) -> None:
    """Validate ``config`` against ``schema`` with integers that must be written as integers.

    ``schema`` is the schema or the path of its YAML file.

    Raises
    ------
    ConfigError
        Naming the first offending key, its value and what the schema wants.
    """
    if not isinstance(schema, Mapping):
        schema = yaml.safe_load(Path(schema).read_text())
    errors = sorted(_strict_validator(schema).iter_errors(config), key=lambda e: [str(k) for k in e.absolute_path])
    if errors:
        e = errors[0]
        wanted = e.validator_value if isinstance(e.validator_value, list) else [e.validator_value]
        if e.validator == "type" and "integer" in wanted and isinstance(e.instance, float):
            hint = f" (write {int(e.instance)})" if e.instance.is_integer() else ""
            raise ConfigError(f"config: {_key(e.absolute_path)} must be an integer; got {e.instance!r}{hint}")
        raise ConfigError(f"config: {_key(e.absolute_path)}: {e.message}")


def check_references(config: Mapping[str, Any]) -> None:
    """Names in the config must refer to configured things (image sets, DS models, runs).

    Raises
    ------
    ConfigError
        Naming the key, the unknown name and the valid ones.
    """
    image_sets = config["image_sets"]
    ds_models = config["ds_models"]
    models = config.get("models") or {}
    training = config.get("training") or {}
    runs = training.get("runs") or {}
    adversarial = config.get("adversarial") or {}

    def fail(message: str) -> None:
        raise ConfigError(f"config: {message}")

    for name, m in models.items():
        for s in m["image_sets"]:
            if s not in image_sets:
                fail(f"models.{name}.image_sets names {s!r}, not one of image_sets {sorted(image_sets)}")
        if "trained" in m:
            if m["trained"] not in runs:
                fail(f"models.{name}.trained names {m['trained']!r}, not one of training.runs {sorted(runs)}")
            for key in ("arch", "weights", "checkpoint"):
                if m.get(key):
                    fail(f"models.{name}: 'trained' and '{key}' exclude each other")
        elif "arch" not in m:
            fail(f"models.{name} needs 'arch' (e.g. resnet50) or 'trained' (a training run)")
        if parse_checkpoint_model_id(name):
            fail(f"models.{name}: names ending in -epochNNNN are reserved for training checkpoints")
    for run, r in runs.items():
        for key in ("train_set", "test_set"):
            if r[key] not in image_sets:
                fail(f"training.runs.{run}.{key} names {r[key]!r}, not one of image_sets {sorted(image_sets)}")
    for where, sets in [("training.image_sets", training.get("image_sets"))] + [
        (f"training.runs.{run}.image_sets", r.get("image_sets")) for run, r in runs.items()
    ]:
        for s in sets or []:
            if s not in image_sets:
                fail(f"{where} names {s!r}, not one of image_sets {sorted(image_sets)}")
    for d in training.get("ds_models") or []:
        if d not in ds_models:
            fail(f"training.ds_models names {d!r}, not one of ds_models {sorted(ds_models)}")
    for name, s in image_sets.items():
        if s.get("fetch") and s["kind"] != "fashion_mnist":
            fail(f"image_sets.{name}.fetch works for kind fashion_mnist only")
    if adversarial.get("ds_model") is not None and adversarial["ds_model"] not in ds_models:
        fail(f"adversarial.ds_model names {adversarial['ds_model']!r}, not one of ds_models {sorted(ds_models)}")
    if adversarial and adversarial["clip_min"] >= adversarial["clip_max"]:
        fail(f"adversarial.clip_min ({adversarial['clip_min']}) must be below clip_max ({adversarial['clip_max']})")


def check_config(config: Mapping[str, Any], schema: str | Path | Mapping[str, Any]) -> None:
    """:func:`check_types` then :func:`check_references` (after Snakemake's ``validate``)."""
    check_types(config, schema)
    check_references(config)
