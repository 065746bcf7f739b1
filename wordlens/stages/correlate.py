"""Stages of ``rules/correlate.smk``: concept × concept correlation matrices."""

from __future__ import annotations

from collections.abc import Sequence


def correlate_layer(*, h5: str, manifest: str, corr: Sequence[str], device: str = "cpu") -> None:
    """The concept correlation matrix of each image group of one layer (``corr[g]`` for group g)."""
    from wordlens.activations import correlate_layer as correlate
    from wordlens.images import read_manifest

    frame = read_manifest(manifest)
    for group, out in enumerate(corr):
        correlate(h5, frame, group, device="cuda" if str(device).startswith("cuda") else "cpu").save(out)
