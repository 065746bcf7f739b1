"""Stages of ``rules/clustering.smk``: category hierarchies per layer (Dai's Algorithm 1),
reference taxonomies (word space, WordNet, a hierarchy file), their agreement with
permutation nulls in chunks and BHY across layers, the figures, and filter prediction
trees (Dai's Algorithm 2).

The methods are :mod:`wordlens.clustering` and :mod:`wordlens.wordnet`, the maps
:mod:`wordlens.embedding`, the figures :mod:`wordlens.taxonomy_figures`.
"""

from __future__ import annotations

import json as _json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wordlens import io as wio

log = logging.getLogger(__name__)


def _names(concept_table: str | None) -> dict[str, str]:
    from wordlens.figures import concept_names

    return concept_names(concept_table)


def _concept_rows(manifest: pd.DataFrame) -> tuple[list[str], list[np.ndarray]]:
    """The manifest's concepts in class order and the activation-cache rows of each."""
    from wordlens.categories import concept_rows

    return concept_rows(manifest)


def _write_trees(Z: np.ndarray, ids: Sequence[str], names: Mapping[str, str], newick: str, json: str,
                 about: Mapping[str, Any]) -> None:
    from wordlens.clustering import to_json, to_newick

    labels = [names.get(c, c) for c in ids]
    with wio.atomic_path(newick, suffix=".nwk") as tmp:
        Path(tmp).write_text(to_newick(Z, labels) + "\n")
    tree = {**about, "concepts": list(ids), "names": labels, "tree": to_json(Z, labels)}
    with wio.atomic_path(json, suffix=".json") as tmp:
        Path(tmp).write_text(_json.dumps(tree, indent=1))


def _distance_label(distance: str) -> str:
    return "merge distance ½(1 − cos)" if distance == "cosine" else "merge distance 1 − Pearson r"


def _load(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def cluster_layer(*, manifest: str, h5: str, concept_table: str | None, vectors: str, newick: str, json: str,
                  representation: str, distance: str, linkage: str, keep_vectors: bool, model: str, image_set: str,
                  layer: str) -> None:
    """The distances between one layer's representative vectors (streamed from the cache
    in bounded memory) and the hierarchy over all sampled concepts, as Newick and JSON;
    the vectors themselves are kept only for the figure layers (``keep_vectors``), whose
    maps and noise category need them."""
    from wordlens.activations import open_activations
    from wordlens.clustering import (category_distances, dai_hierarchy, representative_distances,
                                     representative_vectors)
    from wordlens.images import read_manifest

    ids, rows = _concept_rows(read_manifest(manifest))
    channel_mean = representation == "channel_mean"
    with open_activations(h5) as f:
        shape = [int(s) for s in f.attrs["layer_shape"]]
        if keep_vectors:
            vec = representative_vectors(f["activations"], rows, shape=shape, channel_mean=channel_mean, names=ids)
            D = category_distances(vec, metric=distance, names=ids)
        else:
            vec = np.zeros((len(ids), 0))
            D = representative_distances(f["activations"], rows, distance, shape=shape, channel_mean=channel_mean,
                                         names=ids)
    Z = dai_hierarchy(D, method=linkage)
    with wio.atomic_path(vectors, suffix=".npz") as tmp:
        np.savez(tmp, concepts=np.array(ids, dtype=str), vectors=vec, distances=D, linkage=Z,
                 representation=representation, distance=distance, method=linkage)
    _write_trees(Z, ids, _names(concept_table), newick, json,
                 {"model": model, "image_set": image_set, "layer": layer, "representation": representation,
                  "distance": distance, "linkage": linkage})


def fetch_wordnet(*, root: str, data_noun: str) -> None:
    """WordNet 3.0's database files under ``root`` (Debian's wordnet-base, unpacked without root)."""
    from wordlens.wordnet import fetch_wordnet as fetch

    found = fetch(Path(root))
    if not Path(data_noun).exists():
        raise FileNotFoundError(f"WordNet's files are in {found}, but the workflow reads them from "
                                f"{Path(data_noun).parent}: move WordNet 3.0's dict/ files (data.noun, index.noun, …) "
                                "there")


def build_reference(*, kind: str, manifest: str, image_set_name: str, reference: str, newick: str, json: str,
                    distance: str, tree_distance: str, linkage: str, name: str, concept_table: str | None = None,
                    data_noun: str | None = None, hierarchy: str | None = None) -> None:
    """A reference taxonomy over the image set's sampled concepts: the hierarchy of a DS
    model's word vectors (the layers' distance and linkage), or of WordNet's or a
    hierarchy file's tree distances (:func:`wordlens.categories.reference_distances`)."""
    from wordlens.categories import reference_distances
    from wordlens.clustering import dai_hierarchy
    from wordlens.images import read_manifest

    ids, _ = _concept_rows(read_manifest(manifest))
    ids, D = reference_distances(kind, ids, concept_table=concept_table, data_noun=data_noun, hierarchy=hierarchy,
                                 distance=distance, tree_distance=tree_distance, what=f"{image_set_name}/{name}")
    Z = dai_hierarchy(D, method=linkage)
    with wio.atomic_path(reference, suffix=".npz") as tmp:
        np.savez(tmp, concepts=np.array(ids, dtype=str), distances=D, linkage=Z, kind=kind)
    names = _names(concept_table) if concept_table else {}
    _write_trees(Z, ids, names, newick, json, {"image_set": image_set_name, "reference": name, "kind": kind,
                                               "distance": distance if kind == "ds" else tree_distance,
                                               "linkage": linkage})


def _pair(vectors: str, reference: str, linkage: str):
    """The layer's and the reference's hierarchies over their common concepts."""
    from wordlens.categories import common_hierarchies

    layer, ref = _load(vectors), _load(reference)
    return common_hierarchies([str(c) for c in layer["concepts"]], layer["distances"],
                              [str(c) for c in ref["concepts"]], ref["distances"], method=linkage,
                              what=f"{vectors} and {reference}")


def score_clustering(*, vectors: str, reference: str, observed: str, linkage: str, cuts: Sequence[int]) -> None:
    """Observed agreement (cophenetic correlation, Fowlkes–Mallows at each cut) of one layer."""
    from wordlens.clustering import agreement

    ids, Z_layer, Z_ref = _pair(vectors, reference, linkage)
    values = agreement(Z_layer, Z_ref, cuts)
    wio.write_parquet(pd.DataFrame({"statistic": list(values), "value": list(values.values()),
                                    "n_concepts": len(ids)}), observed)


def permute_clustering(*, vectors: str, reference: str, null: str, linkage: str, cuts: Sequence[int], start: int,
                       stop: int, seed: int) -> None:
    """Permutations [start, stop) of the agreement null of one layer (concepts relabelled)."""
    from wordlens.clustering import agreement, agreement_null

    _, Z_layer, Z_ref = _pair(vectors, reference, linkage)
    names = list(agreement(Z_layer, Z_ref, cuts))
    values = agreement_null(Z_layer, Z_ref, cuts, seed, start, stop)
    with wio.atomic_path(null, suffix=".npz") as tmp:
        np.savez(tmp, statistics=np.array(names, dtype=str), null=np.asarray(values, dtype=np.float64).T,
                 start=start, stop=stop, seed=seed)


def gather_clustering(*, layers: Sequence[str], blocks: Sequence[str], observed: Sequence[str],
                      nulls: Sequence[str], table: str, model: str, image_set: str, reference: str,
                      n_permutations: int, alpha: float) -> None:
    """The tidy agreement table of one (model, image set, reference): p-values, BHY across layers."""
    from wordlens.stages import chunks_by_layer
    from wordlens.tables import clustering_table, load_null_chunks

    null_dists = []
    for files in chunks_by_layer(nulls, layers).values():
        chunks = [_load(p) for p in files]
        null_dists.append({"statistics": chunks[0]["statistics"], "null": load_null_chunks(chunks, n_permutations)})
    frame = clustering_table(layers, dict(zip(layers, blocks)), [pd.read_parquet(p) for p in observed], null_dists,
                             model, image_set, reference, n_permutations, alpha)
    wio.write_parquet(frame, table)


def concat_clustering(*, tables: Sequence[str], table: str) -> None:
    """The agreement tables of every (model, image set, reference) as one."""
    from wordlens.tables import concat_tables

    wio.write_parquet(concat_tables([pd.read_parquet(p) for p in tables]), table)


def plot_clustering(*, tables: Sequence[str], two_vs_two: Sequence[str], png: str, pdf: str, model: str) -> None:
    """The agreement of each reference through the layers, beside the model's 2 vs. 2 curve."""
    from wordlens.tables import concat_tables
    from wordlens.taxonomy_figures import agreement_curve

    frame = concat_tables([pd.read_parquet(p) for p in tables])
    two = concat_tables([pd.read_parquet(p) for p in two_vs_two]) if two_vs_two else None
    agreement_curve(frame, [png, pdf], two_vs_two=two,
                    title=f"{model}: agreement of each layer's category hierarchy with the references")


def represent_noise(*, manifest: str, model_name: str, model: Mapping[str, Any], image_set_name: str,
                    image_set: Mapping[str, Any], layer: str, representation: str, n: int, seed: int, vector: str,
                    device: str = "auto") -> None:
    """The representative vector of ``n`` random-noise images (the data set's channel mean
    and std) at one layer: Dai's noise pseudo-category (Fig. 8)."""
    from wordlens.categories import noise_vector

    vec = noise_vector(manifest=manifest, model_name=model_name, model=model, image_set_name=image_set_name,
                       image_set=image_set, layer=layer, n=n, seed=seed,
                       channel_mean=representation == "channel_mean", device=device)
    with wio.atomic_path(vector, suffix=".npz") as tmp:
        np.savez(tmp, vector=vec, n=n, seed=seed)


def plot_taxonomy(*, vectors: str, h5: str, manifest: str, concept_table: str | None, dendrogram: str,
                  dendrogram_pdf: str, mst: str, mst_svg: str, umap: str, max_leaves: int, seed: int, model: str,
                  layer: str) -> None:
    """Dendrogram and minimum spanning tree of one layer's concepts, and UMAP maps of its
    images and representative vectors (Dai, Figs. 8–9)."""
    from wordlens.activations import open_activations
    from wordlens.categories import project_rows
    from wordlens.clustering import minimum_spanning_tree
    from wordlens.embedding import embed_2d
    from wordlens.images import read_manifest
    from wordlens.taxonomy_figures import dendrogram_figure, mst_figure, umap_figure

    data = _load(vectors)
    ids = [str(c) for c in data["concepts"]]
    names = _names(concept_table)
    labels = [names.get(c, c) for c in ids]
    what = f"{model}, {layer}"
    dendrogram_figure(data["linkage"], labels, [dendrogram, dendrogram_pdf], title=f"{what}: category hierarchy",
                      max_leaves=max_leaves, xlabel=_distance_label(str(data["distance"])))
    mst_figure(minimum_spanning_tree(data["distances"]), labels, [mst, mst_svg],
               title=f"{what}: minimum spanning tree")
    man = read_manifest(manifest).sort_values("row")
    with open_activations(h5) as f:
        points = project_rows(f["activations"], seed=seed)
    index = {c: i for i, c in enumerate(ids)}
    image_labels = [index[str(c)] for c in man["concept"]]  # indices: names may repeat (ImageNet's two cranes)
    umap_figure(embed_2d(points, seed=seed), image_labels, embed_2d(data["vectors"], seed=seed), labels, [umap],
                title=f"{what}: UMAP of the images and of the representative vectors")


def plot_noise_taxonomy(*, vectors: str, noise: str, concept_table: str | None, dendrogram: str,
                        dendrogram_pdf: str, mst: str, mst_svg: str, distance: str, linkage: str, max_leaves: int,
                        model: str, layer: str) -> None:
    """The layer's hierarchy and MST with random noise as one more category (Dai, Fig. 8)."""
    from wordlens.clustering import add_noise_category, category_distances, dai_hierarchy, minimum_spanning_tree
    from wordlens.taxonomy_figures import dendrogram_figure, mst_figure

    data = _load(vectors)
    names = _names(concept_table)
    labels = [names.get(str(c), str(c)) for c in data["concepts"]]
    vec, labels = add_noise_category(data["vectors"], labels, _load(noise)["vector"])
    D = category_distances(vec, metric=distance)
    what = f"{model}, {layer}"
    dendrogram_figure(dai_hierarchy(D, method=linkage), labels, [dendrogram, dendrogram_pdf],
                      title=f"{what}: category hierarchy with a noise category", max_leaves=max_leaves,
                      xlabel=_distance_label(distance))
    mst_figure(minimum_spanning_tree(D), labels, [mst, mst_svg], title=f"{what}: minimum spanning tree with noise")


def grow_prediction_tree(*, manifest: str, h5: str, concept_table: str | None, image_set_name: str,
                         image_set: Mapping[str, Any], class_file: str | None, cls: int, layer: str,
                         top_images: int, json: str, png: str, svg: str, model: str) -> None:
    """Dai's Algorithm 2 for one class at one layer: the filter prediction tree over the
    class's sampled images, each node's critical filter and its top-activating images."""
    from wordlens.activations import open_activations
    from wordlens.clustering import critical_filter_top_images, prediction_tree
    from wordlens.concepts import class_ids
    from wordlens.images import ImageSource, read_manifest
    from wordlens.taxonomy_figures import prediction_tree_figure

    ids = class_ids(ImageSource.from_config(image_set_name, image_set), class_file)
    concept = ids[int(cls)]
    man = read_manifest(manifest)
    rows = man[man["concept"] == concept].sort_values("row")
    if rows.empty:
        raise ValueError(f"prediction tree: class {concept!r} (index {cls}) has no sampled image in {manifest}")
    with open_activations(h5) as f:
        shape = [int(s) for s in f.attrs["layer_shape"]]
        maps = np.asarray(f["activations"][np.sort(rows["row"].to_numpy())], dtype=np.float64)
    maps = maps.reshape(len(rows), *shape)
    try:
        nodes = prediction_tree(maps)
    except ValueError as err:
        raise ValueError(f"prediction tree of class {concept!r} at {layer} ({image_set_name}): {err}") from None
    top = critical_filter_top_images(maps, nodes, top_images)
    image_ids = rows["image_id"].tolist()
    name = _names(concept_table).get(concept, concept)
    out = {"model": model, "image_set": image_set_name, "layer": layer, "class_id": concept, "class_name": name,
           "images": image_ids, "nodes": nodes,
           "top_images": {str(k): [image_ids[i] for i in v] for k, v in top.items()}}
    with wio.atomic_path(json, suffix=".json") as tmp:
        Path(tmp).write_text(_json.dumps(out, indent=1, default=_plain))
    prediction_tree_figure(nodes, [png, svg], title=f"{model}, {layer}: prediction tree of {name}",
                           leaf_labels=image_ids)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset, np.ndarray)):
        return sorted(np.asarray(list(value)).tolist()) if isinstance(value, (set, frozenset)) else value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
