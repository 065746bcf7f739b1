"""Stages of ``rules/data.smk``: Fashion-MNIST, concept tables, sampling manifests."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from wordlens import io as wio

log = logging.getLogger(__name__)


def fetch_fashion_mnist(*, root: str) -> None:
    """Obtain Fashion-MNIST into ``root`` (:func:`wordlens.training.obtain_fashion_mnist`)."""
    from wordlens.training import obtain_fashion_mnist

    obtain_fashion_mnist(root)


def match_concepts(*, image_set_name: str, image_set: Mapping[str, Any], ds_name: str, ds: Mapping[str, Any],
                   table: str, summary: str, class_file: str | None = None, cache_dir: str | None = None,
                   device: str = "cpu") -> None:
    """Match an image set's classes in a DS model; write the concept table and a one-row summary."""
    from wordlens import concepts, words
    from wordlens.images import ImageSource

    spec = words.DSModelSpec.from_config(ds_name, dict(ds))
    source = ImageSource.from_config(image_set_name, image_set)
    ids = concepts.class_ids(source) if source.kind == "imagefolder" and not class_file else None
    classes = concepts.class_list(source.kind, class_ids=ids, path=class_file)
    model = words.load_ds_model(spec, cache_dir=cache_dir, device="cuda" if device.startswith("cuda") else "cpu")
    matched = concepts.match_concepts(classes, model)
    concepts.write_concept_table(matched, table)
    wio.write_parquet(concepts.match_summary(matched, ds_name, spec.kind), summary)


def sample_images(*, image_set_name: str, image_set: Mapping[str, Any], manifest: str, images_per_concept: int,
                  seed: int, on_error: str, class_file: str | None = None) -> None:
    """Sample k images per concept into k groups; write the manifest."""
    from wordlens.concepts import class_ids
    from wordlens.images import ImageSource, sample_manifest

    source = ImageSource.from_config(image_set_name, image_set)
    frame = sample_manifest(source, images_per_concept=images_per_concept, seed=seed,
                            concepts=image_set.get("concepts"), class_ids=class_ids(source, class_file),
                            on_error=on_error)
    wio.write_parquet(frame, manifest)
    log.info("manifest: %d images, %d concepts, %d groups", len(frame), frame["concept"].nunique(),
             frame["group"].nunique())


def concat_concepts(*, summaries: Sequence[str], image_sets: Sequence[str], table: str) -> None:
    """One table of the concept matches of every (image set, DS model)."""
    from wordlens.tables import concat_tables

    wio.write_parquet(concat_tables([pd.read_parquet(p) for p in summaries], {"image_set": list(image_sets)}), table)
