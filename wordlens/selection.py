"""Which images are tested: representative images, the misclassified images and their
reference concepts (1 vs. 2), and the sources and targets of the targeted attacks.

Every choice here is seeded and documented; the workflow's stage functions only read
their inputs, call these and write the results.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

MISTAKE_COLUMNS = ("image_id", "row", "group", "true", "predicted", "pred_prob", "cosine_true_predicted",
                   "references", "reference_rows")
ATTACK_COLUMNS = ("attack", "source", "image_id", "source_row", "source_class_index", "target", "target_index",
                  "category", "category_rank", "target_correlation", "source_chunk")
ADVERSARIAL_TEST_COLUMNS = ("image_id", "row", "attack", "true", "predicted", "category", "references",
                            "reference_rows")


def representatives(predictions: pd.DataFrame, vocab: set[str] | Sequence[str]) -> pd.DataFrame:
    """Each concept's representative image: its first correctly classified image by
    manifest row, for concepts in ``vocab`` (those with a word vector).

    Concepts without a correctly classified image have none (they are not used as
    references or attack sources).

    Returns
    -------
    DataFrame with columns concept, row, image_id, in row order.
    """
    vocab = set(vocab)
    correct = predictions[predictions["correct"].fillna(False).astype(bool) & predictions["concept"].isin(vocab)]
    return correct.sort_values("row").drop_duplicates("concept")[["concept", "row", "image_id"]].reset_index(drop=True)


def draw_references(cases: Sequence[tuple[int, str, str]], representative: pd.DataFrame, n_reference: int,
                    seed: int) -> tuple[int, list[list[str]], list[list[int]]]:
    """Reference concepts (and their images' rows) for each ``(row, true, predicted)`` test case.

    A case's eligible references are the concepts with a representative image other than
    its own true and predicted class.  Every case gets the same number
    ``R = min(n_reference, smallest eligible count)`` so the 1 vs. 2 test runs on m × R
    matrices; case ``row`` draws its R without replacement from its eligible concepts
    (in representative order) with ``numpy.random.default_rng([seed, row])``, and they
    are returned sorted by concept id.

    Returns
    -------
    R, references, reference_rows
    """
    eligible = [[c for c in representative["concept"] if c not in (true, predicted)] for _, true, predicted in cases]
    R = min([int(n_reference), *map(len, eligible)]) if eligible else 0
    rep_row = dict(zip(representative["concept"], representative["row"]))
    refs, ref_rows = [], []
    for (row, _, _), pool in zip(cases, eligible):
        r = sorted(np.random.default_rng([int(seed), int(row)]).choice(pool, size=R, replace=False).tolist()) \
            if R else []
        refs.append(r)
        ref_rows.append([int(rep_row[c]) for c in r])
    return R, refs, ref_rows


def select_mistakes(predictions: pd.DataFrame, vectors: dict[str, np.ndarray], class_ids: Sequence[str],
                    n_reference: int, seed: int) -> pd.DataFrame:
    """The misclassified images to test with 1 vs. 2, and each one's reference concepts.

    A mistake (top-1 prediction ≠ true class) is kept when its true and predicted classes
    both have a word vector (are keys of ``vectors``).  Its references come from
    :func:`draw_references` over the :func:`representatives` of the concepts with vectors.

    Parameters
    ----------
    predictions
        The predictions table (columns row, image_id, group, concept, correct, pred_index,
        pred_prob).
    vectors
        Word vector of each analysed concept.
    class_ids
        The class id of each model output (``pred_index`` indexes it).

    Returns
    -------
    DataFrame with :data:`MISTAKE_COLUMNS`, in row order.
    """
    from wordlens.concepts import cosine

    vocab = set(vectors)
    ids = list(class_ids)
    pred = predictions.assign(pred_concept=[ids[i] if 0 <= i < len(ids) else "" for i in predictions["pred_index"]])
    mistakes = pred[~pred["correct"].fillna(True).astype(bool)
                    & pred["concept"].isin(vocab) & pred["pred_concept"].isin(vocab)].sort_values("row")
    cases = [(int(m.row), m.concept, m.pred_concept) for m in mistakes.itertuples(index=False)]
    R, refs, ref_rows = draw_references(cases, representatives(pred, vocab), n_reference, seed)
    rows = [{"image_id": m.image_id, "row": int(m.row), "group": int(m.group), "true": m.concept,
             "predicted": m.pred_concept, "pred_prob": float(m.pred_prob),
             "cosine_true_predicted": cosine(vectors[m.concept], vectors[m.pred_concept]),
             "references": r, "reference_rows": rr}
            for m, r, rr in zip(mistakes.itertuples(index=False), refs, ref_rows)]
    frame = pd.DataFrame(rows, columns=list(MISTAKE_COLUMNS))
    if R < 3:
        log.warning("only %d mistake(s) with %d reference concept(s): the 1 vs. 2 test needs at least 3 references",
                    len(frame), R)
    log.info("%d misclassified images with word vectors for both classes; %d references each", len(frame), R)
    return frame


def attack_sources(candidates: Sequence[str], n_sources: int, seed: int) -> list[str]:
    """The source concepts of the targeted attacks: ``min(n_sources, len(candidates))``
    drawn without replacement with ``numpy.random.default_rng(seed)``, kept in candidate
    order."""
    k = min(int(n_sources), len(candidates))
    if k < n_sources:
        log.info("%d source concepts requested, %d have a correctly classified image: attacking %d",
                 n_sources, len(candidates), k)
    picked = np.sort(np.random.default_rng(int(seed)).choice(len(candidates), size=k, replace=False))
    return [candidates[i] for i in picked]


def select_attacks(predictions: pd.DataFrame, similarity: tuple[Sequence[str], np.ndarray],
                   class_ids: Sequence[str], n_sources: int, n_targets: int, sources_per_job: int,
                   seed: int) -> pd.DataFrame:
    """Source images and their targeted-attack targets.

    Sources: :func:`attack_sources` among the concepts of ``similarity`` (those with word
    vectors) that have a representative (correctly classified) image; each attacks that
    image.  Targets, among all concepts of ``similarity``: the most and least similar to
    the source by word-vector correlation and ``n_targets − 2`` evenly spaced between
    (:func:`wordlens.concepts.select_targets`).  Source j goes to attack job
    ``j // sources_per_job``.

    Parameters
    ----------
    similarity
        ``(concepts, C_D)``: the concepts with word vectors, in class order, and their word
        correlation matrix (of the DS model that chooses the targets).

    Returns
    -------
    DataFrame with :data:`ATTACK_COLUMNS`, one row per attack.
    """
    from wordlens.concepts import select_targets

    pool, S = list(similarity[0]), similarity[1]
    ids = list(class_ids)
    reps = representatives(predictions, pool).set_index("concept")
    candidates = [c for c in pool if c in reps.index]
    if len(pool) < n_targets + 1:
        raise ValueError(f"{n_targets} targets per source need at least {n_targets + 1} concepts with word vectors; "
                         f"this image set has {len(pool)} (lower adversarial.n_targets)")
    if not candidates:
        raise ValueError("no concept has a correctly classified image to attack")
    sources = attack_sources(candidates, n_sources, seed)
    at = {c: i for i, c in enumerate(pool)}
    rows = []
    for j, src in enumerate(sources):
        for rank, (t, category, r) in enumerate(select_targets(S, at[src], n_targets)):
            rows.append({"attack": len(rows), "source": src, "image_id": reps.at[src, "image_id"],
                         "source_row": int(reps.at[src, "row"]), "source_class_index": ids.index(src),
                         "target": pool[t], "target_index": ids.index(pool[t]), "category": category,
                         "category_rank": rank, "target_correlation": r, "source_chunk": j // int(sources_per_job)})
    log.info("%d attacks: %d sources × %d targets", len(rows), len(sources), n_targets)
    return pd.DataFrame(rows, columns=list(ATTACK_COLUMNS))


def adversarial_tests(adversarial_manifest: pd.DataFrame, predictions: pd.DataFrame, vocab: set[str],
                      n_reference: int, seed: int) -> pd.DataFrame:
    """The 1 vs. 2 test cases of the successful adversarial images (the mistakes format).

    Each adversarial image whose source and target both have word vectors is tested
    with its source as the true class and its target (the class the model now predicts)
    as the predicted one, against :func:`draw_references` over the representative clean
    images (``reference_rows`` are rows of the clean image set).
    """
    man = adversarial_manifest[adversarial_manifest["concept"].isin(vocab)
                               & adversarial_manifest["target"].isin(vocab)].sort_values("row")
    cases = [(int(m.row), m.concept, m.target) for m in man.itertuples(index=False)]
    R, refs, ref_rows = draw_references(cases, representatives(predictions, vocab), n_reference, seed)
    frame = pd.DataFrame({"image_id": man["image_id"].to_numpy(), "row": man["row"].to_numpy(dtype=np.int64),
                          "attack": man["attack"].to_numpy(), "true": man["concept"].to_numpy(),
                          "predicted": man["target"].to_numpy(), "category": man["category"].to_numpy(),
                          "references": refs, "reference_rows": ref_rows}, columns=list(ADVERSARIAL_TEST_COLUMNS))
    if R < 3:
        log.warning("%d adversarial image(s) with %d reference concept(s): the 1 vs. 2 test needs at least 3",
                    len(frame), R)
    log.info("%d adversarial images to test; %d references each", len(frame), R)
    return frame
