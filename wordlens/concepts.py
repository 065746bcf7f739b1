"""Concepts: class names and synonyms, their match in a DS model, the word-space
similarity matrix, and adversarial target selection."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # the word models and torch are imported only where they are used
    from wordlens.words import DSModel

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
CLASS_FILES = {
    "imagenet": DATA_DIR / "imagenet_classes.tsv",
    "cifar100": DATA_DIR / "cifar100_classes.tsv",
    "fashion_mnist": DATA_DIR / "fashion_mnist_classes.tsv",
}
TABLE_COLUMNS = ("class_index", "class_id", "synonyms", "matched", "synonym_index", "matched_synonym",
                 "matched_term", "vector")
#: The six adversarial target categories, from most to least similar to the source.
TARGET_CATEGORIES = ("most similar", "more similar", "mildly similar", "somewhat similar", "less similar",
                     "least similar")


def read_class_file(path: str | Path) -> pd.DataFrame:
    """A class list: ``class_index``, ``class_id`` and ``synonyms`` (a list of terms, in order).

    The file is tab-separated with a header ``class_index  <id column>  synonyms`` ('#'
    lines are comments); synonyms are comma-separated.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class list {path} does not exist")
    frame = pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)
    if frame.shape[1] != 3 or frame.columns[0] != "class_index" or frame.columns[2] != "synonyms":
        raise ValueError(f"{path}: expected the columns class_index, <class id>, synonyms; got {list(frame.columns)}")
    frame.columns = ["class_index", "class_id", "synonyms"]
    frame["class_index"] = frame["class_index"].astype(int)
    frame["synonyms"] = [[s.strip() for s in row.split(",") if s.strip()] for row in frame["synonyms"]]
    empty = frame.loc[frame["synonyms"].map(len) == 0, "class_id"].tolist()
    if empty:
        raise ValueError(f"{path}: classes without any synonym: {empty[:10]}")
    if frame["class_id"].duplicated().any():
        raise ValueError(f"{path}: duplicated class ids {frame.loc[frame['class_id'].duplicated(), 'class_id'].tolist()[:10]}")
    return frame


def class_list(kind: str, class_ids: Sequence[str] | None = None, path: str | Path | None = None) -> pd.DataFrame:
    """The class list of an image-set kind (shipped in ``data/``), or of an ImageFolder tree.

    For ``imagefolder`` without a ``path``, each class id (folder name) is its own single
    synonym with ``_`` read as a space.
    """
    if path is not None:
        return read_class_file(path)
    if kind in CLASS_FILES:
        return read_class_file(CLASS_FILES[kind])
    if kind == "imagefolder":
        if class_ids is None:
            raise ValueError("an imagefolder class list needs the class ids (folder names) or a class file path")
        ids = sorted(class_ids)
        return pd.DataFrame({"class_index": range(len(ids)), "class_id": ids,
                             "synonyms": [[c.replace("_", " ")] for c in ids]})
    raise ValueError(f"no class list for image-set kind {kind!r}")


def class_ids(source: Any, class_file: str | Path | None = None) -> list[str]:
    """The ordered class ids that a model's outputs refer to, for an image set.

    An ImageFolder tree without a class file uses torchvision's ImageFolder convention:
    its class folders sorted by name.  Every other image set uses its class list (the
    shipped one of its kind, or ``class_file``).

    Parameters
    ----------
    source
        The :class:`wordlens.images.ImageSource`.
    """
    from wordlens.images import class_folders

    if class_file or source.kind != "imagefolder":
        return class_list(source.kind, path=class_file)["class_id"].tolist()
    return class_folders(source)


def match_concepts(classes: pd.DataFrame, model: DSModel) -> pd.DataFrame:
    """The concept table of a class list in a DS model.

    For each class the synonyms are tried in order; the first one the model has (in any
    of the spellings of :func:`wordlens.words.term_forms`) gives the class's vector, as
    in "Words as a window" ("we use the vector of the first word that matches").
    Unmatched classes stay in the table with ``matched = False``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE_COLUMNS`; ``vector`` is a float32 array or None.
    """
    found = []
    for row in classes.itertuples(index=False):
        hit = None
        for j, synonym in enumerate(row.synonyms):
            key = model.find(synonym)
            if key is not None:
                hit = (j, synonym, key)
                break
        found.append(hit)
    keys = [h[2] for h in found if h is not None]
    vectors = iter(model.embed(keys)) if keys else iter(())
    table = pd.DataFrame(
        {
            "class_index": classes["class_index"].to_numpy(),
            "class_id": classes["class_id"].to_numpy(),
            "synonyms": classes["synonyms"].to_list(),
            "matched": [h is not None for h in found],
            "synonym_index": [h[0] if h else -1 for h in found],
            "matched_synonym": [h[1] if h else None for h in found],
            "matched_term": [h[2] if h else None for h in found],
            "vector": [np.asarray(next(vectors), dtype=np.float32) if h else None for h in found],
        }
    )
    n = int(table["matched"].sum())
    log.info("DS model %s matched %d of %d classes", model.name, n, len(table))
    if n < len(table):
        log.info("unmatched: %s", table.loc[~table["matched"], "class_id"].tolist()[:50])
    return table


def match_summary(table: pd.DataFrame, ds_model: str, kind: str) -> pd.DataFrame:
    """One row saying how many of an image set's classes a DS model matched, and which not."""
    unmatched = table.loc[~table["matched"], "class_id"].tolist()
    log.info("%s matched %d of %d classes; unmatched: %s", ds_model, len(table) - len(unmatched), len(table),
             unmatched)
    return pd.DataFrame([{"ds_model": ds_model, "kind": kind, "n_classes": len(table),
                          "n_matched": len(table) - len(unmatched), "unmatched": unmatched,
                          "matched_later_synonym": int((table["synonym_index"] > 0).sum())}])


def read_concept_table(path: str | Path) -> pd.DataFrame:
    """Read a concept table written by :func:`write_concept_table`."""
    table = pd.read_parquet(path)
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} is not a wordlens concept table: missing column(s) {missing}")
    table["vector"] = [None if v is None else np.asarray(v, dtype=np.float32) for v in table["vector"]]
    table["synonyms"] = [list(s) for s in table["synonyms"]]
    return table


def write_concept_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a concept table as Parquet (atomically)."""
    from wordlens.io import write_parquet

    out = table.copy()
    out["vector"] = [None if v is None else np.asarray(v, dtype=np.float32).tolist() for v in out["vector"]]
    write_parquet(out, path)


def matched_ids(tables: Mapping[str, pd.DataFrame] | Sequence[pd.DataFrame]) -> list[str]:
    """Class ids matched in every table (the 2018 paper kept the classes all four models had),
    in the class order of the first table."""
    tables = list(tables.values()) if isinstance(tables, Mapping) else list(tables)
    if not tables:
        raise ValueError("no concept tables to intersect")
    common = set.intersection(*(set(t.loc[t["matched"], "class_id"]) for t in tables))
    return [c for c in tables[0]["class_id"] if c in common]


def analysed_concepts(table: pd.DataFrame, intersect_with: Sequence[pd.DataFrame] = ()) -> list[str]:
    """The concepts a DS model analyses: those its concept table matched, and, with
    ``concepts.intersect``, only those every other DS model's table matched too (in the
    class order of ``table``)."""
    return matched_ids([table, *intersect_with])


def align_spaces(matrices: Sequence[tuple[Sequence[str], np.ndarray]], table: pd.DataFrame,
                 analysed: Sequence[str], min_concepts: int = 4) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """Image-space matrices and the word-space matrix over the same concepts, in one order.

    Parameters
    ----------
    matrices
        ``(concepts, matrix)`` per image group: a concept × concept image-space matrix
        and the concept of each row.
    table
        The DS model's concept table (its vectors give the word-space matrix C_D).
    analysed
        The concepts the DS model analyses (:func:`analysed_concepts`).
    min_concepts
        The test's minimum (4 for 2 vs. 2: two pairs of two concepts).

    Returns
    -------
    ids, A, B
        The concepts of the first group's rows that are analysed (in that group's row
        order), each group's matrix restricted and reordered to ``ids``, and C_D over
        ``ids``.

    Raises
    ------
    ValueError
        If fewer than ``min_concepts`` concepts remain, or a group lacks one of them.
    """
    keep = set(analysed)
    ids = [c for c in matrices[0][0] if c in keep]
    if len(ids) < min_concepts:
        raise ValueError(f"only {len(ids)} concepts of the image set have word vectors; the test needs {min_concepts}")
    _, B = word_similarity(table, ids)
    A = []
    for g, (concepts, M) in enumerate(matrices):
        pos = {c: i for i, c in enumerate(concepts)}
        missing = [c for c in ids if c not in pos]
        if missing:
            raise ValueError(f"image group {g} has no image of concept(s) {missing[:10]}")
        idx = [pos[c] for c in ids]
        A.append(np.asarray(M)[np.ix_(idx, idx)])
    return ids, A, B


def concept_vectors(table: pd.DataFrame, class_ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """The matched classes' ids and vectors (w × d), in ``class_ids`` order if given."""
    matched = table.loc[table["matched"]].set_index("class_id")
    ids = list(matched.index) if class_ids is None else list(class_ids)
    missing = [c for c in ids if c not in matched.index]
    if missing:
        raise ValueError(f"no vector for class(es) {missing[:10]} in this concept table")
    vectors = np.stack([matched.at[c, "vector"] for c in ids]) if ids else np.zeros((0, 0), np.float32)
    return ids, vectors


def word_similarity(table: pd.DataFrame, class_ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """C_D: the w × w Pearson correlation matrix between the concepts' word vectors."""
    ids, vectors = concept_vectors(table, class_ids)
    from wordlens.stats import corr_rows

    return ids, corr_rows(vectors)


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    """Cosine similarity of two vectors (0 if either is zero)."""
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    return float(u @ v / (nu * nv)) if nu > 0 and nv > 0 else 0.0


def select_targets(similarity: np.ndarray, source: int, n_targets: int = 6) -> list[tuple[int, str, float]]:
    """Adversarial targets for concept ``source``: the most similar, the least similar, and
    ``n_targets − 2`` spaced evenly between, by word-space correlation.

    The other concepts are ranked by their correlation with the source (highest first,
    ties by index); targets are the ranks ``round(k · (w − 2) / (n_targets − 1))``,
    k = 0 … n_targets − 1.

    Returns
    -------
    list of (target index, category, correlation)
        Categories are :data:`TARGET_CATEGORIES` when ``n_targets == 6``.
    """
    S = np.asarray(similarity, dtype=np.float64)
    w = S.shape[0]
    if S.ndim != 2 or S.shape[1] != w:
        raise ValueError(f"similarity must be a square matrix; got shape {S.shape}")
    if not 0 <= source < w:
        raise ValueError(f"source index {source} is outside 0..{w - 1}")
    if n_targets < 2 or n_targets > w - 1:
        raise ValueError(f"n_targets must be between 2 and w − 1 = {w - 1}; got {n_targets}")
    others = np.array([j for j in range(w) if j != source])
    order = others[np.lexsort((others, -S[source, others]))]  # by correlation desc, then index
    ranks = np.rint(np.linspace(0, len(order) - 1, n_targets)).astype(int)
    names = TARGET_CATEGORIES if n_targets == 6 else tuple(f"rank {r}" for r in ranks)
    return [(int(order[r]), names[k], float(S[source, order[r]])) for k, r in enumerate(ranks)]
