"""Stages of ``rules/extract.smk``: model predictions and the HDF5 activation cache."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def predict_classes(*, model_name: str, model: Mapping[str, Any], image_set_name: str,
                    image_set: Mapping[str, Any], manifest: str, predictions: str, class_file: str | None = None,
                    batch_size: int = 64, device: str = "auto", num_workers: int = 0) -> None:
    """Top-1 predictions and logits of a model on the manifest's images (Parquet)."""
    from wordlens.activations import extract_activations
    from wordlens.concepts import class_ids
    from wordlens.images import ImageSource, read_manifest
    from wordlens.models import ModelSpec

    source = ImageSource.from_config(image_set_name, image_set)
    extract_activations(ModelSpec.from_config(model_name, dict(model)), source, read_manifest(manifest), {},
                        predictions, class_ids=class_ids(source, class_file), batch_size=batch_size, device=device,
                        num_workers=num_workers)


def extract_activations(*, model_name: str, model: Mapping[str, Any], image_set_name: str,
                        image_set: Mapping[str, Any], manifest: str, layer: str, h5: str, batch_size: int = 64,
                        device: str = "auto", storage_dtype: str = "float32", compression: str | None = None,
                        num_workers: int = 0) -> None:
    """One layer's activations for the manifest's images (HDF5)."""
    from wordlens import activations
    from wordlens.images import ImageSource, read_manifest
    from wordlens.models import ModelSpec

    activations.extract_activations(ModelSpec.from_config(model_name, dict(model)),
                                    ImageSource.from_config(image_set_name, image_set), read_manifest(manifest),
                                    {layer: h5}, None, batch_size=batch_size, device=device,
                                    storage_dtype=storage_dtype, compression=compression, num_workers=num_workers)
