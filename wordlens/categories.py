"""The concepts of the clustering branch: which cache rows are whose, the reference
taxonomies over the same concepts, the concepts two hierarchies share, a bounded-memory
projection of image rows for the maps, and the noise pseudo-category.

Method choices:

* **Concepts** are the manifest's, in class order; a reference covers what it can (a DS
  model its matched concepts, WordNet every class with a WordNet id, a hierarchy file
  must cover them all), and a layer is compared with a reference on the concepts both
  have, in the layer's order (:func:`common_hierarchies`).
* **Reference distances**: a DS model's word vectors with the layers' own distance
  (½(1 − cos) or 1 − Pearson); WordNet 3.0's noun hierarchy or a hierarchy file with a
  tree distance (:func:`wordlens.wordnet.tree_distances`). Each becomes a hierarchy by
  the same linkage as the layers (:func:`wordlens.clustering.dai_hierarchy`), so the
  agreement compares like with like.
* **Image maps** of wide layers use a Gaussian random projection to :data:`MAP_DIMS`
  dimensions (Johnson–Lindenstrauss: pairwise distances kept up to a small factor),
  accumulated over feature blocks so memory stays O(n × (block + dims)).
* **Noise category** (Dai, Fig. 8): the representative vector of random-noise images
  with the data set's channel mean and std, through the same layer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Dimensions of the random projection of image rows for the UMAP maps.
MAP_DIMS = 256
#: Fewest concepts a hierarchy comparison accepts.
MIN_CONCEPTS = 3


def concept_rows(manifest: pd.DataFrame) -> tuple[list[str], list[np.ndarray]]:
    """The manifest's concepts in class order and, for each, its activation-cache rows
    (the manifest's ``row`` column, ascending)."""
    firsts = manifest.sort_values(["class_index", "row"]).drop_duplicates("concept")
    ids = [str(c) for c in firsts["concept"]]
    rows = [np.sort(manifest.loc[manifest["concept"] == c, "row"].to_numpy(dtype=np.int64)) for c in ids]
    return ids, rows


def reference_distances(kind: str, concepts: Sequence[str], *, concept_table: str | None = None,
                        data_noun: str | None = None, hierarchy: str | None = None, distance: str = "cosine",
                        tree_distance: str = "path", what: str = "reference") -> tuple[list[str], np.ndarray]:
    """The concepts a reference covers (in ``concepts`` order) and their distance matrix.

    Parameters
    ----------
    kind
        ``"ds"`` (word vectors of ``concept_table``), ``"wordnet"`` (WordNet 3.0's noun
        hypernyms in ``data_noun``; the concepts are WordNet ids ``n########``) or
        ``"hierarchy"`` (a child/parent TSV file).
    distance
        For ``ds``: ``cosine`` (½(1 − cos)) or ``correlation`` (1 − Pearson).
    tree_distance
        For ``wordnet`` and ``hierarchy``: ``path`` or ``wup``.

    Raises
    ------
    ValueError
        Naming ``what`` and the problem: fewer than 3 covered concepts, a concept that is
        not a WordNet id, a hierarchy file that misses concepts.
    """
    from wordlens.clustering import category_distances

    concepts = [str(c) for c in concepts]
    if kind == "ds":
        from wordlens.concepts import concept_vectors, read_concept_table

        table = read_concept_table(concept_table)
        matched = set(table.loc[table["matched"], "class_id"].astype(str))
        ids = [c for c in concepts if c in matched]
        dropped = [c for c in concepts if c not in matched]
        if dropped:
            log.info("%s: %d concept(s) without a word vector left out: %s", what, len(dropped), dropped[:10])
        _check_count(ids, what)
        ids, vectors = concept_vectors(table, ids)
        return list(ids), category_distances(np.asarray(vectors, dtype=np.float64), metric=distance, names=ids)
    if kind == "wordnet":
        from wordlens.wordnet import wnid_distances, wnid_to_offset

        for c in concepts:
            try:
                wnid_to_offset(c)
            except ValueError as err:
                raise ValueError(f"{what}: concept {c!r} is not a WordNet noun id (n + 8 digits), so WordNet "
                                 f"cannot place it; use a hierarchy file for this image set ({err})") from None
        _check_count(concepts, what)
        return concepts, wnid_distances(concepts, Path(data_noun).parent, tree_distance)
    if kind == "hierarchy":
        from wordlens.wordnet import read_hierarchy_file

        _check_count(concepts, what)
        return concepts, read_hierarchy_file(hierarchy, concepts, measure=tree_distance)
    raise ValueError(f"{what}: unknown reference kind {kind!r}; valid: ds, wordnet, hierarchy")


def _check_count(ids: Sequence[str], what: str) -> None:
    if len(ids) < MIN_CONCEPTS:
        raise ValueError(f"{what}: {len(ids)} concept(s) {list(ids)}; a hierarchy needs at least {MIN_CONCEPTS}")


def common_hierarchies(layer_ids: Sequence[str], layer_D: np.ndarray, ref_ids: Sequence[str], ref_D: np.ndarray,
                       method: str = "weighted", what: str = "clustering"
                       ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The concepts a layer and a reference share (in the layer's order) and the two
    hierarchies over them (:func:`wordlens.clustering.dai_hierarchy` of each distance
    matrix restricted to those concepts)."""
    from wordlens.clustering import dai_hierarchy

    ref_index = {c: i for i, c in enumerate(ref_ids)}
    ids = [c for c in layer_ids if c in ref_index]
    _check_count(ids, f"{what}: concepts in both")
    li = np.array([list(layer_ids).index(c) for c in ids])
    ri = np.array([ref_index[c] for c in ids])
    Dl = np.asarray(layer_D, dtype=np.float64)[np.ix_(li, li)]
    Dr = np.asarray(ref_D, dtype=np.float64)[np.ix_(ri, ri)]
    return ids, dai_hierarchy(Dl, method=method), dai_hierarchy(Dr, method=method)


def project_rows(dset: Any, dims: int = MAP_DIMS, seed: int = 0, block_features: int = 65536) -> np.ndarray:
    """All rows of an activation dataset (n × d), as float64; when d > ``dims``, their
    Gaussian random projection to ``dims`` dimensions (entries N(0, 1/dims), drawn per
    feature block from ``default_rng([seed, block_start])``), read in feature blocks."""
    n, d = (int(x) for x in dset.shape)
    if d <= dims:
        return np.asarray(dset[:], dtype=np.float64)
    out = np.zeros((n, dims), dtype=np.float64)
    for a in range(0, d, block_features):
        b = min(a + block_features, d)
        block = np.asarray(dset[:, a:b], dtype=np.float64)
        R = np.random.default_rng([seed, a]).standard_normal((b - a, dims)) / np.sqrt(dims)
        out += block @ R
    return out


def noise_vector(*, manifest: str, model_name: str, model: Mapping[str, Any], image_set_name: str,
                 image_set: Mapping[str, Any], layer: str, n: int, seed: int, channel_mean: bool = False,
                 device: str = "auto", batch_size: int = 64) -> np.ndarray:
    """The representative vector of ``n`` random-noise images (the sampled images' channel
    mean and std, :func:`wordlens.visualization.noise_images`) at ``layer``: their mean
    activation, flattened or averaged over each channel's positions."""
    import torch

    from wordlens.images import ImageSource, read_manifest
    from wordlens.layers import PIXELS, feature_extractor
    from wordlens.models import model_from_config
    from wordlens.visualization import data_stats, noise_images

    net, pre, dev = model_from_config(model_name, dict(model), device)
    source = ImageSource.from_config(image_set_name, dict(image_set))
    mean, std = data_stats(read_manifest(manifest), source, pre)
    noise = torch.as_tensor(noise_images(int(n), pre.input_shape, mean, std, int(seed)), dtype=torch.float32)
    extractor = None if layer == PIXELS else feature_extractor(net, [layer])
    total = None
    with torch.no_grad():
        for batch in noise.split(batch_size):
            x = pre.normalize(batch.to(dev))
            acts = x if extractor is None else extractor(x)[layer]
            if channel_mean and acts.ndim > 2:
                acts = acts.flatten(2).mean(dim=2)
            part = acts.flatten(1).double().sum(dim=0).cpu().numpy()
            total = part if total is None else total + part
    return total / len(noise)
