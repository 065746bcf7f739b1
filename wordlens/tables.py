"""Tidy result tables: permutation-null chunks, p-values per layer and block, BHY families,
and the concatenations and joins of the final tables.

Every tidy statistics table has :data:`TIDY_COLUMNS`: one row per (model, DS model,
image set, layer, group, statistic) with the value, its permutation p-value, the BHY
q-value within its family (the layers of one model × DS model × image set × statistic ×
group) and whether it is significant at ``alpha``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

TIDY_COLUMNS = ("model", "ds_model", "image_set", "layer", "layer_index", "block", "group", "statistic", "value",
                "p", "q", "significant", "n_permutations", "n_concepts", "n_tests", "n_ties", "n_constant")
#: The columns that make a BHY family.
FAMILY = ("model", "ds_model", "image_set", "statistic", "group")


def load_null_chunks(chunks: Sequence[Mapping[str, Any]], n_permutations: int, key: str = "null") -> np.ndarray:
    """Concatenate null chunks (each a mapping with ``start``, ``stop`` and ``key``) in
    permutation order, checking that they tile ``[0, n_permutations)`` exactly.

    Returns
    -------
    array of shape ``chunk[key].shape[:-1] + (n_permutations,)``.

    Raises
    ------
    ValueError
        If chunks overlap, leave a gap, or cover fewer than ``n_permutations``.
    """
    parts = sorted(((int(c["start"]), int(c["stop"]), np.asarray(c[key])) for c in chunks), key=lambda c: c[0])
    edge = 0
    for a, b, _ in parts:
        if a != edge:
            raise ValueError(f"null chunks do not tile [0, {n_permutations}): got {[(c[0], c[1]) for c in parts]}")
        edge = b
    if edge < n_permutations:
        raise ValueError(f"null chunks cover only [0, {edge}) of {n_permutations} permutations")
    return np.concatenate([c[2] for c in parts], axis=-1)[..., :n_permutations]


def bhy_by_family(frame: pd.DataFrame, alpha: float, family: Sequence[str] = FAMILY) -> pd.DataFrame:
    """Add q, significant and n_tests: Benjamini–Hochberg–Yekutieli within each family
    (:func:`wordlens.stats.fdr_bhy`; NaN p-values are left out of their family)."""
    from wordlens.stats import fdr_bhy

    frame = frame.copy()
    frame["q"] = np.nan
    frame["significant"] = False
    frame["n_tests"] = 0
    for _, idx in frame.groupby(list(family), sort=False).groups.items():
        result = fdr_bhy(frame.loc[idx, "p"].to_numpy(dtype=float), alpha=alpha)
        frame.loc[idx, "q"] = result.q
        frame.loc[idx, "significant"] = result.reject
        frame.loc[idx, "n_tests"] = result.n_tests
    return frame


def _pvalue(value: float, null: np.ndarray) -> float:
    from wordlens.stats import permutation_pvalue

    return float(permutation_pvalue(value, null)) if np.isfinite(value) else np.nan


def two_vs_two_table(layers: Sequence[str], blocks: Mapping[str, str], observed: Sequence[pd.DataFrame],
                     nulls: Sequence[Mapping[str, np.ndarray]], model: str, ds_model: str, image_set: str,
                     n_permutations: int, alpha: float) -> pd.DataFrame:
    """The tidy 2 vs. 2 table of one (model, DS model, image set).

    Parameters
    ----------
    observed
        Per layer, the observed table (rows per group and "mean").
    nulls
        Per layer, ``{"groups": groups × n, "mean": n}`` (:func:`load_null_chunks`).

    Each group's value is tested against its own null, the mean against the null of the
    mean; an undefined (NaN) value gets p = NaN and stays out of BHY.
    """
    rows = []
    for index, (layer, obs, null) in enumerate(zip(layers, observed, nulls)):
        for rec in obs.itertuples(index=False):
            dist = null["mean"] if rec.group == "mean" else null["groups"][int(rec.group)]
            rows.append({"model": model, "ds_model": ds_model, "image_set": image_set, "layer": layer,
                         "layer_index": index, "block": blocks.get(layer, ""), "group": rec.group,
                         "statistic": "2v2", "value": rec.value, "p": _pvalue(rec.value, dist),
                         "n_permutations": n_permutations, "n_concepts": rec.n_concepts, "n_ties": rec.n_ties,
                         "n_constant": int(getattr(rec, "n_constant", 0))})
    frame = bhy_by_family(pd.DataFrame(rows), alpha)
    return frame[list(TIDY_COLUMNS)]


CLUSTERING_COLUMNS = ("model", "image_set", "reference", "layer", "layer_index", "block", "statistic", "value",
                      "p", "q", "significant", "n_permutations", "n_concepts", "n_tests")
#: The columns that make a BHY family of the clustering table (the layers of one curve).
CLUSTERING_FAMILY = ("model", "image_set", "reference", "statistic")


def clustering_table(layers: Sequence[str], blocks: Mapping[str, str], observed: Sequence[pd.DataFrame],
                     nulls: Sequence[Mapping[str, Any]], model: str, image_set: str, reference: str,
                     n_permutations: int, alpha: float) -> pd.DataFrame:
    """The tidy agreement table of one (model, image set, reference taxonomy).

    Parameters
    ----------
    observed
        Per layer, a frame with columns statistic, value, n_concepts (one row per statistic).
    nulls
        Per layer, ``{"statistics": [...], "null": n_statistics × n}`` (:func:`load_null_chunks`).

    Each statistic is tested against its own null, p = (1 + b) / (1 + n) with b the null
    values ≥ the observed one; BHY across the layers of each statistic (one curve).
    """
    rows = []
    for index, (layer, obs, null) in enumerate(zip(layers, observed, nulls)):
        names = [str(x) for x in null["statistics"]]
        for rec in obs.itertuples(index=False):
            dist = np.asarray(null["null"])[names.index(rec.statistic)]
            rows.append({"model": model, "image_set": image_set, "reference": reference, "layer": layer,
                         "layer_index": index, "block": blocks.get(layer, ""), "statistic": rec.statistic,
                         "value": rec.value, "p": _pvalue(rec.value, dist), "n_permutations": n_permutations,
                         "n_concepts": int(rec.n_concepts)})
    frame = bhy_by_family(pd.DataFrame(rows), alpha, family=CLUSTERING_FAMILY)
    return frame[list(CLUSTERING_COLUMNS)]


def block_means(values: Sequence[float], nulls: Sequence[np.ndarray], blocks: Sequence[str]
                ) -> list[tuple[str, float, np.ndarray]]:
    """The average of a statistic over the layers of each block, and its null.

    The null of a block average is the average of its layers' nulls taken permutation by
    permutation: every layer's permutation p uses the same relabelling π_p (the nulls
    are seeded by (seed, p)), so it is the statistic the block average would take under
    π_p.  Layers with a NaN value are left out of their block (as is a block without
    any defined layer).

    Returns
    -------
    list of (block, mean, null), blocks in first-appearance order.
    """
    out = []
    for block in dict.fromkeys(blocks):
        idx = [i for i, b in enumerate(blocks) if b == block and np.isfinite(values[i])]
        if idx:
            out.append((block, float(np.mean([values[i] for i in idx])), np.mean([nulls[i] for i in idx], axis=0)))
    return out


def one_vs_two_table(layers: Sequence[str], blocks: Mapping[str, str], observed: Sequence[Mapping[str, Any]],
                     nulls: Sequence[Mapping[str, Any]], model: str, ds_model: str, image_set: str,
                     n_permutations: int, alpha: float, group: str = "mistakes") -> pd.DataFrame:
    """The tidy 1 vs. 2 table of one (model, DS model, image set): per layer and per block.

    Parameters
    ----------
    observed
        Per layer, the arrays of :func:`wordlens.encoding.one_vs_two_matrices` (``passed``,
        ``category``, ``n_constant``).
    nulls
        Per layer, ``{"null": n, "categories": [...], "category_null": categories × n}``.
    group
        The name of the rows over all test images ("mistakes"; "all" for adversarial
        images).  Test images with a category also get rows per category, each its own
        BHY family; ``1v2_block_mean`` rows average the layers of each block
        (:func:`block_means`).
    """
    from wordlens.encoding import category_order

    rows, per_subset = [], {}
    for index, (layer, obs, null) in enumerate(zip(layers, observed, nulls)):
        passed = np.asarray(obs["passed"])
        category = np.asarray(obs["category"]) if "category" in obs else np.zeros(len(passed), dtype=str)
        n_constant = int(obs.get("n_constant", 0))
        cats = [str(c) for c in null["categories"]]
        if cats != category_order(category):
            raise ValueError(f"null chunks of layer {layer} name categories {cats}; the inputs have "
                             f"{category_order(category)} (stale files?)")
        subsets = [(group, np.ones(len(passed), bool), null["null"])]
        subsets += [(c, category == c, null["category_null"][i]) for i, c in enumerate(cats)]
        for name, mask, dist in subsets:
            m = int(mask.sum())
            value = float(passed[mask].mean()) if m and not n_constant else np.nan
            rows.append({"layer": layer, "layer_index": index, "block": blocks.get(layer, ""), "group": name,
                         "statistic": "1v2", "value": value, "p": _pvalue(value, dist) if m else np.nan,
                         "n_concepts": m, "n_constant": n_constant})
            per_subset.setdefault(name, []).append((layer, value, dist, n_constant))
    n_of = {r["group"]: r["n_concepts"] for r in rows}  # the last layer's count
    for name, items in per_subset.items():
        for index, (block, value, dist) in enumerate(block_means([v for _, v, _, _ in items], [d for _, _, d, _ in items],
                                                                 [blocks.get(layer, "") for layer, *_ in items])):
            rows.append({"layer": block, "layer_index": index, "block": block, "group": name,
                         "statistic": "1v2_block_mean", "value": value, "p": _pvalue(value, dist),
                         "n_concepts": n_of[name], "n_constant": sum(k for layer, _, _, k in items
                                                               if blocks.get(layer, "") == block)})
    frame = pd.DataFrame(rows, columns=["layer", "layer_index", "block", "group", "statistic", "value", "p",
                                        "n_concepts", "n_constant"])
    frame.insert(0, "image_set", image_set)
    frame.insert(0, "ds_model", ds_model)
    frame.insert(0, "model", model)
    frame["n_permutations"] = n_permutations
    frame["n_ties"] = 0
    frame = bhy_by_family(frame, alpha)
    return frame[list(TIDY_COLUMNS)]


def concat_tables(frames: Sequence[pd.DataFrame], labels: Mapping[str, Sequence[Any]] | None = None) -> pd.DataFrame:
    """Concatenate tables, optionally inserting label columns in front (``labels[column][i]``
    labels every row of ``frames[i]``; each label is inserted at position 0 in turn, so
    the last label ends up first)."""
    parts = []
    for i, frame in enumerate(frames):
        frame = frame.copy()
        for column, values in (labels or {}).items():
            frame.insert(0, column, values[i])
        parts.append(frame)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def training_table(run: str, log: pd.DataFrame, epochs: Sequence[int], curves: Sequence[pd.DataFrame],
                   permuted: bool) -> pd.DataFrame:
    """One training run's table: its 2 vs. 2 tables per checkpoint (``curves[i]`` of epoch
    ``epochs[i]``) joined with the per-epoch training log (``seconds`` → ``epoch_seconds``)."""
    frames = concat_tables(curves, {"epoch": [int(e) for e in epochs]})
    frames.insert(0, "permuted_labels", bool(permuted))
    frames.insert(0, "run", run)
    return frames.merge(log.rename(columns={"seconds": "epoch_seconds"}), on="epoch", how="left")


def undefined_layers(path: str) -> list[str]:
    """Lines naming the layers of a tidy table whose test was undefined because of constant
    activation rows (reported as NaN), for the run summary; [] for other tables."""
    frame = pd.read_parquet(path)
    if not {"n_constant", "value", "layer", "statistic"} <= set(frame.columns):
        return []
    bad = frame[(frame["n_constant"] > 0) & frame["value"].isna() & ~frame["statistic"].str.endswith("block_mean")]
    keys = [c for c in ("run", "model", "ds_model", "image_set", "layer") if c in bad.columns]
    return [f"{path}: {', '.join(f'{k} {v}' for k, v in zip(keys, key))}: undefined "
            f"({int(sub['n_constant'].max())} constant activation row(s)); reported as NaN"
            for key, sub in bad.groupby(keys, sort=False)]
