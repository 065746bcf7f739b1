"""The workflow's stages as plain functions: paths and plain parameters in, files out.

Each ``scripts/*.py`` adapter reads ``snakemake.input/output/params`` and calls one of
these; they can equally be called from Python.  Data flows one way: manifest →
activations (HDF5) → correlation matrices → statistics and nulls → tidy tables.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
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

    man = read_manifest(manifest)
    pred = pd.read_parquet(predictions)
    table = read_concept_table(concept_table)
    vocab = set(_analysed_concepts([concept_table], intersect_with))
    ids = list(class_ids)
    pred = pred.assign(pred_concept=[ids[i] if 0 <= i < len(ids) else "" for i in pred["pred_index"]])
    correct = pred[pred["correct"].fillna(False).astype(bool) & pred["concept"].isin(vocab)]
    representative = correct.sort_values("row").drop_duplicates("concept")[["concept", "row", "image_id"]]
    mistakes = pred[~pred["correct"].fillna(True).astype(bool)
                    & pred["concept"].isin(vocab) & pred["pred_concept"].isin(vocab)].sort_values("row")
    vec_ids, vecs = concept_vectors(table, sorted(vocab))
    vec = dict(zip(vec_ids, vecs))
    eligible = [[c for c in representative["concept"] if c not in (m.concept, m.pred_concept)]
                for m in mistakes.itertuples(index=False)]
    R = min([n_reference, *map(len, eligible)]) if eligible else 0
    rows = []
    rep_row = dict(zip(representative["concept"], representative["row"]))
    for m, pool in zip(mistakes.itertuples(index=False), eligible):
        refs = sorted(np.random.default_rng([int(seed), int(m.row)]).choice(pool, size=R, replace=False).tolist()) \
            if R else []
        rows.append({"image_id": m.image_id, "row": int(m.row), "group": int(m.group), "true": m.concept,
                     "predicted": m.pred_concept, "pred_prob": float(m.pred_prob),
                     "cosine_true_predicted": cosine(vec[m.concept], vec[m.pred_concept]),
                     "references": refs, "reference_rows": [int(rep_row[c]) for c in refs]})
    frame = pd.DataFrame(rows, columns=["image_id", "row", "group", "true", "predicted", "pred_prob",
                                        "cosine_true_predicted", "references", "reference_rows"])
    if R < 3:
        log.warning("only %d mistake(s) with %d reference concept(s): the 1 vs. 2 test needs at least 3 references",
                    len(frame), R)
    log.info("%d misclassified images with word vectors for both classes; %d references each", len(frame), R)
    wio.write_parquet(frame, out)


class _Rows:
    """Selected rows (sorted) of an HDF5 dataset as an (m × features) array-like for corr_rows."""

    def __init__(self, dset: Any, rows: np.ndarray):
        self.dset, self.rows = dset, rows
        self.shape = (len(rows), dset.shape[1])

    def __getitem__(self, key):
        return self.dset[self.rows, key[1]]


def one_vs_two_inputs_stage(mistakes: str, h5: str, concept_table: str, out: str) -> None:
    """The 1 vs. 2 matrices of one layer (m mistakes × R references) and the observed outcome.

    ``img`` holds corr(image of mistake i, image of its reference r) at this layer;
    ``true`` / ``pred`` the word-space correlations of its true / predicted class with r.
    """
    import h5py

    from wordlens.concepts import read_concept_table, word_similarity
    from wordlens.stats import corr_rows, one_vs_two_scores

    frame = pd.read_parquet(mistakes)
    R = len(frame["references"].iloc[0]) if len(frame) else 0
    if len(frame) == 0 or R < 3:
        log.warning("no 1 vs. 2 test possible: %d mistake(s), %d reference(s)", len(frame), R)
        empty = np.zeros((0, max(R, 0)))
        with wio.atomic_path(out, suffix=".npz") as tmp:
            np.savez(tmp, img=empty, true=empty, pred=empty, passed=np.zeros(0, bool), r_true=np.zeros(0),
                     r_pred=np.zeros(0))
        return
    needed = np.unique(np.concatenate([frame["row"].to_numpy(), np.concatenate(frame["reference_rows"].to_numpy())]))
    with h5py.File(h5, "r", locking=False) as f:
        C = corr_rows(_Rows(f["activations"], needed), block_size=16384)
    pos = {int(r): i for i, r in enumerate(needed)}
    img = np.array([[C[pos[m.row], pos[r]] for r in m.reference_rows] for m in frame.itertuples(index=False)])
    table = read_concept_table(concept_table)
    used = sorted(set(frame["true"]) | set(frame["predicted"]) | {c for refs in frame["references"] for c in refs})
    ids, CD = word_similarity(table, used)
    at = {c: i for i, c in enumerate(ids)}
    wt = np.array([[CD[at[m.true], at[c]] for c in m.references] for m in frame.itertuples(index=False)])
    wp = np.array([[CD[at[m.predicted], at[c]] for c in m.references] for m in frame.itertuples(index=False)])
    scores = one_vs_two_scores(img, wt, wp)
    with wio.atomic_path(out, suffix=".npz") as tmp:
        np.savez(tmp, img=img, true=wt, pred=wp, passed=scores.passed, r_true=scores.r_true, r_pred=scores.r_pred)


def one_vs_two_null_stage(inputs: str, out: str, start: int, stop: int, seed: int, device: str = "auto",
                          dtype: str = "float64") -> None:
    """Permutations [start, stop) of the 1 vs. 2 null of one layer."""
    from wordlens.stats import one_vs_two_null

    with np.load(inputs) as z:
        img, wt, wp = z["img"], z["true"], z["pred"]
    if len(img) and img.shape[1] >= 3:
        null = one_vs_two_null(img, wt, wp, stop - start, seed, start, device=device, dtype=dtype)
    else:
        null = np.full(stop - start, np.nan)
    with wio.atomic_path(out, suffix=".npz") as tmp:
        np.savez(tmp, null=null, start=start, stop=stop, seed=seed)


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
                            n_permutations: int, alpha: float) -> None:
    """p-values and BHY across layers, and across blocks for the block averages (tidy table)."""
    from wordlens.stats import permutation_pvalue

    rows, block_values, block_nulls = [], {}, {}
    for index, (layer, path) in enumerate(zip(layers, inputs)):
        with np.load(path) as z:
            passed = z["passed"]
        m = len(passed)
        null = _load_chunks(nulls[layer], n_permutations)
        value = float(passed.mean()) if m else np.nan
        p = permutation_pvalue(value, null) if m else np.nan
        block = blocks.get(layer, "")
        rows.append({"layer": layer, "layer_index": index, "block": block, "group": "mistakes",
                     "statistic": "1v2", "value": value, "p": p, "n_concepts": m})
        if m:
            block_values.setdefault(block, []).append(value)
            block_nulls.setdefault(block, []).append(null)
    order = list(dict.fromkeys(blocks.get(layer, "") for layer in layers))
    for index, block in enumerate(b for b in order if b in block_values):
        value = float(np.mean(block_values[block]))
        null = np.mean(block_nulls[block], axis=0)  # same permutation indices in every layer
        rows.append({"layer": block, "layer_index": index, "block": block, "group": "mistakes",
                     "statistic": "1v2_block_mean", "value": value, "p": permutation_pvalue(value, null),
                     "n_concepts": rows[0]["n_concepts"]})
    frame = pd.DataFrame(rows)
    frame.insert(0, "image_set", image_set)
    frame.insert(0, "ds_model", ds_model)
    frame.insert(0, "model", model)
    frame["n_permutations"] = n_permutations
    frame["n_ties"] = 0
    frame = _bhy_by_family(frame, ["model", "ds_model", "image_set", "statistic"], alpha)
    wio.write_parquet(frame[list(TIDY_COLUMNS)], out)


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

