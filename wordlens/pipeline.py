"""The workflow's stages as plain functions: paths and plain parameters in, files out.

Each ``scripts/*.py`` adapter reads ``snakemake.input/output/params`` and calls one of
these; they can equally be called from Python.  Data flows one way: manifest →
activations (HDF5) → correlation matrices → statistics and nulls → tidy tables.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from wordlens import io as wio

log = logging.getLogger(__name__)

TIDY_COLUMNS = ("model", "ds_model", "image_set", "layer", "layer_index", "block", "group", "statistic", "value",
                "p", "q", "significant", "n_permutations", "n_concepts", "n_tests", "n_ties")


# --------------------------------------------------------------------------------------
# Script plumbing
# --------------------------------------------------------------------------------------


def snakemake_setup(smk: Any) -> None:
    """Send the script's stderr (logging, progress bars, warnings) to the rule's log.

    Snakemake sets OMP_NUM_THREADS (and friends) to the rule's threads for scripts, which
    torch reads when it is imported, so torch need not be imported here.
    """
    if smk.log:
        stream = open(smk.log[0], "w", buffering=1)  # noqa: SIM115 - lives as long as the script
        sys.stderr = stream
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def image_source(name: str, cfg: Mapping[str, Any]):
    from wordlens.images import ImageSource

    return ImageSource(name=name, kind=cfg["kind"], root=str(cfg["root"]), split=cfg.get("split", "val"))


def model_spec(name: str, cfg: Mapping[str, Any]):
    from wordlens.models import ModelSpec

    return ModelSpec(name=name, arch=cfg["arch"], weights=cfg.get("weights"), checkpoint=cfg.get("checkpoint"),
                     num_classes=cfg.get("num_classes"), preprocessing=dict(cfg.get("preprocessing") or {}),
                     arch_kwargs=dict(cfg.get("arch_kwargs") or {}), seed=int(cfg.get("seed", 0)))


def class_ids_for(image_set: Mapping[str, Any], class_file: str | None = None) -> list[str]:
    """The ordered class ids a model's outputs refer to, for an image set."""
    from wordlens.concepts import class_list
    from wordlens.images import list_items

    if class_file or image_set["kind"] != "imagefolder":
        return class_list(image_set["kind"], path=class_file)["class_id"].tolist()
    return sorted(list_items(image_source("classes", image_set)))


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def fetch_stage(root: str) -> None:
    """Obtain Fashion-MNIST into ``root`` (see :func:`wordlens.training.obtain_fashion_mnist`)."""
    from wordlens.training import obtain_fashion_mnist

    obtain_fashion_mnist(root)


def concept_table_stage(image_set: Mapping[str, Any], ds_name: str, ds: Mapping[str, Any], out: str,
                        summary_out: str, class_file: str | None = None, cache_dir: str | None = None,
                        device: str = "cpu") -> None:
    """Match an image set's classes in a DS model; write the concept table and a one-row summary."""
    from wordlens import concepts, words

    spec = words.DSModelSpec.from_config(ds_name, dict(ds))
    ids = class_ids_for(image_set, class_file) if image_set["kind"] == "imagefolder" and not class_file else None
    classes = concepts.class_list(image_set["kind"], class_ids=ids, path=class_file)
    dev = "cuda" if device.startswith("cuda") else "cpu"
    model = words.load_ds_model(spec, cache_dir=cache_dir, device=dev)
    table = concepts.match_concepts(classes, model)
    concepts.write_concept_table(table, out)
    unmatched = table.loc[~table["matched"], "class_id"].tolist()
    log.info("%s matched %d of %d classes; unmatched: %s", ds_name, len(table) - len(unmatched), len(table),
             unmatched)
    summary = pd.DataFrame([{"ds_model": ds_name, "kind": spec.kind, "n_classes": len(table),
                             "n_matched": len(table) - len(unmatched), "unmatched": unmatched,
                             "matched_later_synonym": int((table["synonym_index"] > 0).sum())}])
    wio.write_parquet(summary, summary_out)


def manifest_stage(name: str, image_set: Mapping[str, Any], out: str, images_per_concept: int, seed: int,
                   on_error: str, class_file: str | None = None) -> None:
    """Sample k images per concept into k groups; write the manifest."""
    from wordlens.images import sample_manifest

    manifest = sample_manifest(image_source(name, image_set), images_per_concept=images_per_concept, seed=seed,
                               concepts=image_set.get("concepts"), class_ids=class_ids_for(image_set, class_file),
                               on_error=on_error)
    wio.write_parquet(manifest, out)
    log.info("manifest: %d images, %d concepts, %d groups", len(manifest), manifest["concept"].nunique(),
             manifest["group"].nunique())


# --------------------------------------------------------------------------------------
# Image side
# --------------------------------------------------------------------------------------


def predictions_stage(model_name: str, model: Mapping[str, Any], set_name: str, image_set: Mapping[str, Any],
                      manifest: str, out: str, class_file: str | None = None, batch_size: int = 64,
                      device: str = "auto", num_workers: int = 0) -> None:
    """Top-1 predictions and logits of a model on the manifest's images."""
    from wordlens.activations import extract_activations
    from wordlens.images import read_manifest

    extract_activations(model_spec(model_name, model), image_source(set_name, image_set), read_manifest(manifest),
                        {}, out, class_ids=class_ids_for(image_set, class_file), batch_size=batch_size,
                        device=device, num_workers=num_workers)


def activations_stage(model_name: str, model: Mapping[str, Any], set_name: str, image_set: Mapping[str, Any],
                      manifest: str, layer: str, out: str, batch_size: int = 64, device: str = "auto",
                      storage_dtype: str = "float32", compression: str | None = None, num_workers: int = 0) -> None:
    """One layer's activations for the manifest's images (HDF5)."""
    from wordlens.activations import extract_activations
    from wordlens.images import read_manifest

    extract_activations(model_spec(model_name, model), image_source(set_name, image_set), read_manifest(manifest),
                        {layer: out}, None, batch_size=batch_size, device=device, storage_dtype=storage_dtype,
                        compression=compression, num_workers=num_workers)


def correlation_stage(h5: str, manifest: str, outs: Sequence[str], device: str = "cpu") -> None:
    """The concept correlation matrix of each image group (outs[g] for group g)."""
    from wordlens.activations import correlate_layer
    from wordlens.images import read_manifest

    frame = read_manifest(manifest)
    for group, out in enumerate(outs):
        correlate_layer(h5, frame, group, device="cuda" if str(device).startswith("cuda") else "cpu").save(out)


# --------------------------------------------------------------------------------------
# 2 vs. 2
# --------------------------------------------------------------------------------------


def _analysed_concepts(tables: Sequence[str], intersect_with: Sequence[str] = ()) -> list[str]:
    from wordlens.concepts import matched_ids, read_concept_table

    loaded = [read_concept_table(t) for t in [*tables, *intersect_with]]
    return matched_ids(loaded)


def _aligned(corr_paths: Sequence[str], table_path: str, intersect_with: Sequence[str] = ()):
    """Image-space matrices of every group and the word-space matrix, over the same concepts."""
    from wordlens.activations import LayerCorrelation
    from wordlens.concepts import read_concept_table, word_similarity

    mats = [LayerCorrelation.load(p) for p in corr_paths]
    present = list(mats[0].concepts)
    analysed = set(_analysed_concepts([table_path], intersect_with))
    ids = [c for c in present if c in analysed]
    if len(ids) < 4:
        raise ValueError(f"only {len(ids)} concepts of the image set have word vectors; the 2 vs. 2 test needs 4")
    _, B = word_similarity(read_concept_table(table_path), ids)
    A = []
    for m in mats:
        pos = {c: i for i, c in enumerate(m.concepts)}
        idx = [pos[c] for c in ids]
        A.append(m.corr[np.ix_(idx, idx)])
    return ids, A, B


def two_vs_two_observed_stage(corr: Sequence[str], concept_table: str, out: str, concepts_out: str,
                              intersect_with: Sequence[str] = ()) -> None:
    """Observed 2 vs. 2 per group and averaged; per-concept accuracy (mean over groups)."""
    from wordlens.stats import two_vs_two_pairs

    ids, A, B = _aligned(corr, concept_table, intersect_with)
    rows, per_concept = [], []
    for g, Ag in enumerate(A):
        r = two_vs_two_pairs(Ag, B)
        rows.append({"group": str(g), "value": r.accuracy, "n_ties": r.n_ties, "n_degenerate": r.n_degenerate,
                     "n_concepts": len(ids)})
        per_concept.append(r.per_concept())
    frame = pd.DataFrame(rows)
    frame = pd.concat([frame, pd.DataFrame([{"group": "mean", "value": frame["value"].mean(),
                                             "n_ties": int(frame["n_ties"].sum()),
                                             "n_degenerate": int(frame["n_degenerate"].sum()),
                                             "n_concepts": len(ids)}])], ignore_index=True)
    wio.write_parquet(frame, out)
    wio.write_parquet(pd.DataFrame({"concept": ids, "accuracy": np.mean(per_concept, axis=0),
                                    "accuracy_sd": np.std(per_concept, axis=0)}), concepts_out)


def two_vs_two_null_stage(corr: Sequence[str], concept_table: str, out: str, start: int, stop: int, seed: int,
                          device: str = "auto", dtype: str = "float64", intersect_with: Sequence[str] = ()) -> None:
    """Permutations [start, stop) of the 2 vs. 2 null: per group and for the group mean.

    Permutation p relabels the word space with the same π in every group, so the mean
    over groups under permutation p is the null of the reported (averaged) accuracy.
    """
    from wordlens.stats import two_vs_two_null

    _, A, B = _aligned(corr, concept_table, intersect_with)
    per_group = np.stack([two_vs_two_null(Ag, B, stop - start, seed, start, device=device, dtype=dtype)
                          for Ag in A])
    with wio.atomic_path(out, suffix=".npz") as tmp:
        np.savez(tmp, groups=per_group, mean=per_group.mean(axis=0), start=start, stop=stop, seed=seed)


def _load_nulls(paths: Sequence[str], n_permutations: int) -> dict[str, np.ndarray]:
    """Concatenate 2 vs. 2 null chunks, checking they cover exactly [0, n_permutations)."""
    return {"groups": _load_chunks(paths, n_permutations, "groups"), "mean": _load_chunks(paths, n_permutations, "mean")}


def _bhy_by_family(frame: pd.DataFrame, family: Sequence[str], alpha: float) -> pd.DataFrame:
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


def two_vs_two_gather_stage(layers: Sequence[str], blocks: Mapping[str, str], observed: Sequence[str],
                            nulls: Mapping[str, Sequence[str]], out: str, model: str, ds_model: str,
                            image_set: str, n_permutations: int, alpha: float) -> None:
    """p-values and BHY across layers: the tidy 2 vs. 2 table of one (model, DS model, image set)."""
    from wordlens.stats import permutation_pvalue

    rows = []
    for index, (layer, obs_path) in enumerate(zip(layers, observed)):
        obs = pd.read_parquet(obs_path)
        null = _load_nulls(nulls[layer], n_permutations)
        for rec in obs.itertuples(index=False):
            dist = null["mean"] if rec.group == "mean" else null["groups"][int(rec.group)]
            rows.append({"model": model, "ds_model": ds_model, "image_set": image_set, "layer": layer,
                         "layer_index": index, "block": blocks.get(layer, ""), "group": rec.group,
                         "statistic": "2v2", "value": rec.value, "p": permutation_pvalue(rec.value, dist),
                         "n_permutations": n_permutations, "n_concepts": rec.n_concepts, "n_ties": rec.n_ties})
    frame = _bhy_by_family(pd.DataFrame(rows), ["model", "ds_model", "image_set", "statistic", "group"], alpha)
    wio.write_parquet(frame[list(TIDY_COLUMNS)], out)


def concat_stage(inputs: Sequence[str], out: str, extra: Mapping[str, Sequence[Any]] | None = None) -> None:
    """Concatenate Parquet tables (optionally adding a column per input)."""
    frames = []
    for i, path in enumerate(inputs):
        frame = pd.read_parquet(path)
        for column, values in (extra or {}).items():
            frame.insert(0, column, values[i])
        frames.append(frame)
    wio.write_parquet(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), out)


# --------------------------------------------------------------------------------------
# Misclassified images: 1 vs. 2
# --------------------------------------------------------------------------------------


def mistakes_stage(manifest: str, predictions: str, concept_table: str, out: str, n_reference: int, seed: int,
                   class_ids: Sequence[str], intersect_with: Sequence[str] = ()) -> None:
    """The misclassified images to test and, for each, its reference concepts.

    A mistake is kept when its true and predicted classes both have word vectors.  Its
    references are up to ``n_reference`` correctly classified concepts (one image each,
    the first correctly classified image of the concept), never its true or predicted
    class, drawn with ``default_rng([seed, row])``; every mistake gets the same number R
    of references (the smallest number available) so the test runs on m × R matrices.
    """
    from wordlens.concepts import concept_vectors, cosine, read_concept_table
    from wordlens.images import read_manifest

    read_manifest(manifest)  # checks the manifest's columns
    pred = pd.read_parquet(predictions)
    table = read_concept_table(concept_table)
    vocab = set(_analysed_concepts([concept_table], intersect_with))
    ids = list(class_ids)
    pred = pred.assign(pred_concept=[ids[i] if 0 <= i < len(ids) else "" for i in pred["pred_index"]])
    representative = _representatives(pred, vocab)
    mistakes = pred[~pred["correct"].fillna(True).astype(bool)
                    & pred["concept"].isin(vocab) & pred["pred_concept"].isin(vocab)].sort_values("row")
    vec_ids, vecs = concept_vectors(table, sorted(vocab))
    vec = dict(zip(vec_ids, vecs))
    cases = [(int(m.row), m.concept, m.pred_concept) for m in mistakes.itertuples(index=False)]
    R, refs, ref_rows = _draw_references(cases, representative, n_reference, seed)
    rows = []
    for m, r, rr in zip(mistakes.itertuples(index=False), refs, ref_rows):
        rows.append({"image_id": m.image_id, "row": int(m.row), "group": int(m.group), "true": m.concept,
                     "predicted": m.pred_concept, "pred_prob": float(m.pred_prob),
                     "cosine_true_predicted": cosine(vec[m.concept], vec[m.pred_concept]),
                     "references": r, "reference_rows": rr})
    frame = pd.DataFrame(rows, columns=["image_id", "row", "group", "true", "predicted", "pred_prob",
                                        "cosine_true_predicted", "references", "reference_rows"])
    if R < 3:
        log.warning("only %d mistake(s) with %d reference concept(s): the 1 vs. 2 test needs at least 3 references",
                    len(frame), R)
    log.info("%d misclassified images with word vectors for both classes; %d references each", len(frame), R)
    wio.write_parquet(frame, out)


def _representatives(pred: pd.DataFrame, vocab: set[str]) -> pd.DataFrame:
    """The first correctly classified image (by row) of each concept with a word vector."""
    correct = pred[pred["correct"].fillna(False).astype(bool) & pred["concept"].isin(vocab)]
    return correct.sort_values("row").drop_duplicates("concept")[["concept", "row", "image_id"]]


def _draw_references(cases: Sequence[tuple[int, str, str]], representative: pd.DataFrame, n_reference: int,
                     seed: int) -> tuple[int, list[list[str]], list[list[int]]]:
    """Reference concepts (and their image rows) for each (row, true, predicted) test case.

    Never the case's own true or predicted class; drawn with ``default_rng([seed, row])``;
    every case gets the same number R (the smallest number available, capped at
    ``n_reference``) so the test runs on m × R matrices.
    """
    eligible = [[c for c in representative["concept"] if c not in (true, predicted)]
                for _, true, predicted in cases]
    R = min([n_reference, *map(len, eligible)]) if eligible else 0
    rep_row = dict(zip(representative["concept"], representative["row"]))
    refs, ref_rows = [], []
    for (row, _, _), pool in zip(cases, eligible):
        r = sorted(np.random.default_rng([int(seed), int(row)]).choice(pool, size=R, replace=False).tolist()) \
            if R else []
        refs.append(r)
        ref_rows.append([int(rep_row[c]) for c in r])
    return R, refs, ref_rows


class _Rows:
    """Selected rows (sorted) of an HDF5 dataset as an (m × features) array-like for corr_rows."""

    def __init__(self, dset: Any, rows: np.ndarray):
        self.dset, self.rows = dset, rows
        self.shape = (len(rows), dset.shape[1])

    def __getitem__(self, key):
        return self.dset[self.rows, key[1]]


class _StackedRows:
    """Rows of two HDF5 datasets stacked (first ``a``'s, then ``b``'s) as one array-like."""

    def __init__(self, a: _Rows, b: _Rows):
        if a.shape[1] != b.shape[1]:
            raise ValueError(f"test and reference activations differ in width: {a.shape[1]} vs. {b.shape[1]} features")
        self.a, self.b = a, b
        self.shape = (a.shape[0] + b.shape[0], a.shape[1])

    def __getitem__(self, key):
        return np.concatenate([self.a[key], self.b[key]])


def one_vs_two_inputs_stage(mistakes: str, h5: str, concept_table: str, out: str,
                            reference_h5: str | None = None) -> None:
    """The 1 vs. 2 matrices of one layer (m test images × R references) and the observed outcome.

    ``img`` holds corr(test image i, image of its reference r) at this layer; ``true`` /
    ``pred`` the word-space correlations of its true / predicted class with r.  Test images
    are rows of ``h5``; reference images are rows of ``reference_h5`` when given (the
    adversarial images are tested against clean references), else of ``h5``.  A
    ``category`` column of the test table (adversarial similarity categories) is kept.
    """
    import h5py

    from wordlens.concepts import read_concept_table, word_similarity
    from wordlens.stats import corr_rows, one_vs_two_scores

    frame = pd.read_parquet(mistakes)
    categories = np.array([str(c) for c in frame["category"]] if "category" in frame else [""] * len(frame), dtype=str)
    R = len(frame["references"].iloc[0]) if len(frame) else 0
    if len(frame) == 0 or R < 3:
        log.warning("no 1 vs. 2 test possible: %d test image(s), %d reference(s)", len(frame), R)
        empty = np.zeros((0, max(R, 0)))
        with wio.atomic_path(out, suffix=".npz") as tmp:
            np.savez(tmp, img=empty, true=empty, pred=empty, passed=np.zeros(0, bool), r_true=np.zeros(0),
                     r_pred=np.zeros(0), category=np.zeros(0, dtype=str))
        return
    test_rows = np.unique(frame["row"].to_numpy())
    ref_rows = np.unique(np.concatenate(frame["reference_rows"].to_numpy()))
    with contextlib.ExitStack() as stack:
        f = stack.enter_context(h5py.File(h5, "r", locking=False))
        if reference_h5 is None:
            needed = np.union1d(test_rows, ref_rows)
            C = corr_rows(_Rows(f["activations"], needed), block_size=16384)
            test_pos = ref_pos = {int(r): i for i, r in enumerate(needed)}
        else:
            g = stack.enter_context(h5py.File(reference_h5, "r", locking=False))
            C = corr_rows(_StackedRows(_Rows(f["activations"], test_rows), _Rows(g["activations"], ref_rows)),
                          block_size=16384)
            test_pos = {int(r): i for i, r in enumerate(test_rows)}
            ref_pos = {int(r): len(test_rows) + i for i, r in enumerate(ref_rows)}
    img = np.array([[C[test_pos[m.row], ref_pos[r]] for r in m.reference_rows] for m in frame.itertuples(index=False)])
    table = read_concept_table(concept_table)
    used = sorted(set(frame["true"]) | set(frame["predicted"]) | {c for refs in frame["references"] for c in refs})
    ids, CD = word_similarity(table, used)
    at = {c: i for i, c in enumerate(ids)}
    wt = np.array([[CD[at[m.true], at[c]] for c in m.references] for m in frame.itertuples(index=False)])
    wp = np.array([[CD[at[m.predicted], at[c]] for c in m.references] for m in frame.itertuples(index=False)])
    scores = one_vs_two_scores(img, wt, wp)
    with wio.atomic_path(out, suffix=".npz") as tmp:
        np.savez(tmp, img=img, true=wt, pred=wp, passed=scores.passed, r_true=scores.r_true, r_pred=scores.r_pred,
                 category=categories)


def _category_order(categories: np.ndarray) -> list[str]:
    """Distinct categories, the adversarial similarity categories in their defined order first."""
    from wordlens.concepts import TARGET_CATEGORIES

    present = list(dict.fromkeys(str(c) for c in categories if str(c)))
    return [c for c in TARGET_CATEGORIES if c in present] + [c for c in present if c not in TARGET_CATEGORIES]


def one_vs_two_null_stage(inputs: str, out: str, start: int, stop: int, seed: int, device: str = "auto",
                          dtype: str = "float64") -> None:
    """Permutations [start, stop) of the 1 vs. 2 null of one layer (and of each category's subset)."""
    from wordlens.stats import one_vs_two_null

    with np.load(inputs) as z:
        img, wt, wp = z["img"], z["true"], z["pred"]
        category = z["category"] if "category" in z else np.zeros(len(img), dtype=str)

    def null_of(mask: np.ndarray) -> np.ndarray:
        if mask.any() and img.shape[1] >= 3:
            return one_vs_two_null(img[mask], wt[mask], wp[mask], stop - start, seed, start, device=device,
                                   dtype=dtype)
        return np.full(stop - start, np.nan)

    null = null_of(np.ones(len(img), bool))
    cats = _category_order(category)
    per_category = np.stack([null_of(category == c) for c in cats]) if cats else np.zeros((0, stop - start))
    with wio.atomic_path(out, suffix=".npz") as tmp:
        np.savez(tmp, null=null, categories=np.array(cats, dtype=str), category_null=per_category, start=start,
                 stop=stop, seed=seed)


def _load_chunks(paths: Sequence[str], n_permutations: int, key: str = "null") -> np.ndarray:
    chunks = []
    for p in paths:
        with np.load(p) as z:
            chunks.append((int(z["start"]), int(z["stop"]), z[key]))
    chunks.sort(key=lambda c: c[0])
    edge = 0
    for a, b, _ in chunks:
        if a != edge:
            raise ValueError(f"null chunks do not tile [0, {n_permutations}): got {[(c[0], c[1]) for c in chunks]}")
        edge = b
    if edge < n_permutations:
        raise ValueError(f"null chunks cover only [0, {edge}) of {n_permutations} permutations")
    return np.concatenate([c[2] for c in chunks], axis=-1)[..., :n_permutations]


def one_vs_two_gather_stage(layers: Sequence[str], blocks: Mapping[str, str], inputs: Sequence[str],
                            nulls: Mapping[str, Sequence[str]], out: str, model: str, ds_model: str, image_set: str,
                            n_permutations: int, alpha: float, group: str = "mistakes") -> None:
    """p-values and BHY across layers, and across blocks for the block averages (tidy table).

    ``group`` names the rows over all test images ("mistakes"; "all" for adversarial
    images); test images with a category (the adversarial similarity categories) also
    get rows per category, each its own BHY family.
    """
    from wordlens.stats import permutation_pvalue

    rows, block_values, block_nulls = [], {}, {}
    for index, (layer, path) in enumerate(zip(layers, inputs)):
        with np.load(path) as z:
            passed = z["passed"]
            category = z["category"] if "category" in z else np.zeros(len(passed), dtype=str)
        null = _load_chunks(nulls[layer], n_permutations)
        cat_nulls = _load_chunks(nulls[layer], n_permutations, "category_null")
        with np.load(nulls[layer][0]) as z:
            cats = [str(c) for c in z["categories"]]
        if cats != _category_order(category):
            raise ValueError(f"null chunks of layer {layer} name categories {cats}; the inputs have "
                             f"{_category_order(category)} (stale files?)")
        subsets = [(group, np.ones(len(passed), bool), null)]
        subsets += [(c, category == c, cat_nulls[i]) for i, c in enumerate(cats)]
        block = blocks.get(layer, "")
        for name, mask, dist in subsets:
            m = int(mask.sum())
            value = float(passed[mask].mean()) if m else np.nan
            rows.append({"layer": layer, "layer_index": index, "block": block, "group": name,
                         "statistic": "1v2", "value": value, "p": permutation_pvalue(value, dist) if m else np.nan,
                         "n_concepts": m})
            if m:
                block_values.setdefault((name, block), []).append(value)
                block_nulls.setdefault((name, block), []).append(dist)
    order = list(dict.fromkeys(blocks.get(layer, "") for layer in layers))
    n_of = {r["group"]: r["n_concepts"] for r in rows}
    for name in dict.fromkeys(r["group"] for r in rows):
        for index, block in enumerate(b for b in order if (name, b) in block_values):
            value = float(np.mean(block_values[(name, block)]))
            dist = np.mean(block_nulls[(name, block)], axis=0)  # same permutation indices in every layer
            rows.append({"layer": block, "layer_index": index, "block": block, "group": name,
                         "statistic": "1v2_block_mean", "value": value, "p": permutation_pvalue(value, dist),
                         "n_concepts": n_of[name]})
    frame = pd.DataFrame(rows, columns=["layer", "layer_index", "block", "group", "statistic", "value", "p",
                                        "n_concepts"])
    frame.insert(0, "image_set", image_set)
    frame.insert(0, "ds_model", ds_model)
    frame.insert(0, "model", model)
    frame["n_permutations"] = n_permutations
    frame["n_ties"] = 0
    frame = _bhy_by_family(frame, ["model", "ds_model", "image_set", "statistic", "group"], alpha)
    wio.write_parquet(frame[list(TIDY_COLUMNS)], out)


# --------------------------------------------------------------------------------------
# Adversarial images: targeted MIM, then 1 vs. 2 through the layers
# --------------------------------------------------------------------------------------

ATTACK_COLUMNS = ("attack", "source", "image_id", "source_row", "source_class_index", "target", "target_index",
                  "category", "category_rank", "target_correlation", "source_chunk")


def select_attacks_stage(predictions: str, concept_tables: Sequence[str], out: str, class_ids: Sequence[str],
                         n_sources: int, n_targets: int, sources_per_job: int, seed: int) -> None:
    """Source images and their targeted-attack targets.

    Sources: ``n_sources`` concepts drawn at random (``default_rng(seed)``) among those
    with a correctly classified image and a word vector (in every table given); each
    attacks its first correctly classified image.  Targets (among all concepts with word
    vectors): the most and least similar to the source by the word-vector correlation of
    the first concept table's DS model, and ``n_targets − 2`` evenly spaced between
    (:func:`wordlens.concepts.select_targets`).  Other DS models analyse the attacks
    whose source and target they have vectors for.
    """
    from wordlens.concepts import read_concept_table, select_targets, word_similarity

    pred = pd.read_parquet(predictions)
    ids = list(class_ids)
    vocab = set(_analysed_concepts(concept_tables[:1], concept_tables[1:]))
    pool = [c for c in ids if c in vocab]
    reps = _representatives(pred, vocab).set_index("concept")
    candidates = [c for c in pool if c in reps.index]
    if len(pool) < n_targets + 1:
        raise ValueError(f"{n_targets} targets per source need at least {n_targets + 1} concepts with word vectors; "
                         f"this image set has {len(pool)} (lower adversarial.n_targets)")
    if not candidates:
        raise ValueError("no concept has a correctly classified image to attack")
    k = min(int(n_sources), len(candidates))
    if k < n_sources:
        log.info("%d source concepts requested, %d have a correctly classified image: attacking %d",
                 n_sources, len(candidates), k)
    picked = np.sort(np.random.default_rng(int(seed)).choice(len(candidates), size=k, replace=False))
    sources = [candidates[i] for i in picked]
    _, S = word_similarity(read_concept_table(concept_tables[0]), pool)
    at = {c: i for i, c in enumerate(pool)}
    rows = []
    for j, src in enumerate(sources):
        for rank, (t, category, r) in enumerate(select_targets(S, at[src], n_targets)):
            rows.append({"attack": len(rows), "source": src, "image_id": reps.at[src, "image_id"],
                         "source_row": int(reps.at[src, "row"]), "source_class_index": ids.index(src),
                         "target": pool[t], "target_index": ids.index(pool[t]), "category": category,
                         "category_rank": rank, "target_correlation": r, "source_chunk": j // int(sources_per_job)})
    frame = pd.DataFrame(rows, columns=list(ATTACK_COLUMNS))
    log.info("%d attacks: %d sources × %d targets", len(frame), len(sources), n_targets)
    wio.write_parquet(frame, out)


def attack_stage(model_name: str, model: Mapping[str, Any], set_name: str, image_set: Mapping[str, Any],
                 manifest: str, attacks: str, chunk: int, out_images: str, out_table: str,
                 attack: Mapping[str, Any], class_ids: Sequence[str], device: str = "auto") -> None:
    """Run the targeted attacks of one source chunk; write the images and a table."""
    import torch

    from wordlens.attacks import AttackConfig, run_attacks
    from wordlens.device import resolve_device
    from wordlens.images import ManifestImages, read_manifest
    from wordlens.models import build_model, resolve_preprocessing

    cfg = AttackConfig.from_config(dict(attack))
    todo = pd.read_parquet(attacks)
    todo = todo[todo["source_chunk"] == int(chunk)].reset_index(drop=True)
    man = read_manifest(manifest).set_index("row", drop=False)
    spec = model_spec(model_name, model)
    pre = resolve_preprocessing(spec)
    dev = resolve_device(device)
    images = ManifestImages(man.loc[todo["source_row"]], image_source(set_name, image_set), pre.pixel_transform())
    clean = torch.stack([images[i] for i in range(len(images))]) if len(todo) else torch.zeros((0, *pre.input_shape))
    torch.manual_seed(0)
    torch.backends.cudnn.deterministic = True  # the same images on every rerun, GPU included
    torch.backends.cudnn.benchmark = False
    if len(todo):
        result = run_attacks(build_model(spec, dev), pre.normalize, clean, todo["target_index"].to_numpy(), cfg, dev)
    else:
        from wordlens.attacks import AttackResult

        result = AttackResult(images=clean.clone(), pred_index=np.zeros(0, np.int64), pred_prob=np.zeros(0),
                              target_prob=np.zeros(0), success=np.zeros(0, bool), linf=np.zeros(0), l2=np.zeros(0))
    ids = list(class_ids)
    table = todo.assign(success=result.success, linf=result.linf, l2=result.l2, pred_index=result.pred_index,
                        pred_concept=[ids[i] if 0 <= i < len(ids) else "" for i in result.pred_index],
                        pred_prob=result.pred_prob, target_prob=result.target_prob, epsilon=cfg.epsilon,
                        step_size=cfg.eps_iter, iterations=cfg.iterations, decay=cfg.decay, norm=str(cfg.norm))
    with wio.atomic_path(out_images, suffix=".pt") as tmp:
        torch.save({"images": result.images.contiguous(), "clean": clean.contiguous(),
                    "attack": torch.tensor(todo["attack"].tolist(), dtype=torch.int64)}, tmp)
    wio.write_parquet(table, out_table)
    log.info("chunk %s: %d of %d attacks reached their target", chunk, int(result.success.sum()), len(todo))


def gather_attacks_stage(chunk_images: Sequence[str], chunk_tables: Sequence[str], adv_set: str, out_images: str,
                         out_table: str, out_manifest: str, out_grid: str, model: str, image_set: str,
                         grid_sources: int = 5, concept_table: str | None = None) -> None:
    """All attacks of a (model, image set): one tensor file, one table, and the manifest of
    the adversarial image set (the successful attacks only; failed ones are discarded)."""
    import torch

    from wordlens.images import MANIFEST_COLUMNS

    parts = [torch.load(p, map_location="cpu", weights_only=True) for p in chunk_images]
    table = pd.concat([pd.read_parquet(p) for p in chunk_tables], ignore_index=True)
    attack_ids = torch.cat([p["attack"] for p in parts]).numpy()
    if not np.array_equal(attack_ids, table["attack"].to_numpy()):
        raise ValueError("attack chunk images and tables disagree (stale chunk files?)")
    order = np.argsort(attack_ids, kind="stable")
    adv = torch.cat([p["images"] for p in parts])[torch.as_tensor(order)]
    clean = torch.cat([p["clean"] for p in parts])[torch.as_tensor(order)]
    table = table.iloc[order].reset_index(drop=True)
    table["discarded"] = ~table["success"].astype(bool)
    table.insert(0, "image_set", image_set)
    table.insert(0, "model", model)
    n_failed = int(table["discarded"].sum())
    log.info("%d of %d attacks reached their target; %d discarded", len(table) - n_failed, len(table), n_failed)
    ok = table[table["success"]].reset_index(drop=True)
    manifest = pd.DataFrame({
        "image_id": [f"{model}:{image_set}:attack{a:05d}" for a in ok["attack"]],
        "image_set": adv_set, "kind": "tensor", "split": "adversarial", "path": "",
        "index": np.flatnonzero(table["success"].to_numpy(dtype=bool)).astype(np.int64),  # position in out_images
        "concept": ok["source"], "class_index": ok["source_class_index"].astype(np.int64),
        "group": np.zeros(len(ok), np.int64), "row": np.arange(len(ok), dtype=np.int64),
        "attack": ok["attack"], "target": ok["target"], "category": ok["category"],
        "category_rank": ok["category_rank"], "source_row": ok["source_row"],
    })
    assert list(manifest.columns[:len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    with wio.atomic_path(out_images, suffix=".pt") as tmp:
        torch.save({"images": adv.contiguous(), "attack": torch.tensor(table["attack"].tolist(), dtype=torch.int64)},
                   tmp)
    wio.write_parquet(table, out_table)
    wio.write_parquet(manifest, out_manifest)
    from wordlens.figures import adversarial_grid, concept_names

    adversarial_grid(clean.numpy(), adv.numpy(), table, out_grid, n_sources=grid_sources,
                     names=concept_names(concept_table))


def adversarial_tests_stage(adv_manifest: str, predictions: str, concept_table: str, out: str, n_reference: int,
                            seed: int, intersect_with: Sequence[str] = ()) -> None:
    """The 1 vs. 2 test cases of the adversarial images (the mistakes-table format).

    Each successful adversarial image is tested with its source as the true class and
    its target (the class the model now predicts) as the predicted one, against
    reference concepts that are neither: up to ``n_reference`` correctly classified
    clean images (``reference_rows`` are rows of the clean image set).
    """
    from wordlens.images import read_manifest

    man = read_manifest(adv_manifest)
    vocab = set(_analysed_concepts([concept_table], intersect_with))
    man = man[man["concept"].isin(vocab) & man["target"].isin(vocab)].sort_values("row")
    representative = _representatives(pd.read_parquet(predictions), vocab)
    cases = [(int(m.row), m.concept, m.target) for m in man.itertuples(index=False)]
    R, refs, ref_rows = _draw_references(cases, representative, n_reference, seed)
    frame = pd.DataFrame({"image_id": man["image_id"].to_numpy(), "row": man["row"].to_numpy(dtype=np.int64),
                          "attack": man["attack"].to_numpy(), "true": man["concept"].to_numpy(),
                          "predicted": man["target"].to_numpy(), "category": man["category"].to_numpy(),
                          "references": refs, "reference_rows": ref_rows})
    if R < 3:
        log.warning("%d adversarial image(s) with %d reference concept(s): the 1 vs. 2 test needs at least 3",
                    len(frame), R)
    log.info("%d adversarial images to test; %d references each", len(frame), R)
    wio.write_parquet(frame, out)


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def train_stage(run: str, run_cfg: Mapping[str, Any], train_set: tuple[str, Mapping[str, Any]],
                test_set: tuple[str, Mapping[str, Any]], checkpoint_dir: str, log_out: str,
                device: str = "auto") -> None:
    """Train one run (see :func:`wordlens.training.train`)."""
    from wordlens.training import TrainConfig, train

    cfg = dict(run_cfg)
    model_cfg = dict(cfg.pop("model"))
    for key in ("train_set", "test_set", "image_sets"):
        cfg.pop(key, None)
    spec = model_spec(run, model_cfg)
    train(spec, image_source(*train_set), image_source(*test_set), TrainConfig.from_config(cfg), checkpoint_dir,
          log_out, device=device)


def training_table_stage(run: str, log: str, epochs: Sequence[int], tables: Sequence[str], out: str,
                         permuted: bool) -> None:
    """One table per training run: the per-epoch log joined with 2 vs. 2 per checkpoint."""
    log_frame = pd.read_parquet(log)
    parts = []
    for epoch, path in zip(epochs, tables):
        frame = pd.read_parquet(path)
        frame.insert(0, "epoch", int(epoch))
        parts.append(frame)
    curves = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    curves.insert(0, "permuted_labels", bool(permuted))
    curves.insert(0, "run", run)
    merged = curves.merge(log_frame.rename(columns={"seconds": "epoch_seconds"}), on="epoch", how="left")
    wio.write_parquet(merged, out)

