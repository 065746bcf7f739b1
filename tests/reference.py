"""Slow, literal implementations written from the papers' definitions.

These are the oracles the fast kernels in :mod:`wordlens.stats` are tested against.
They use nothing from wordlens and favour obviousness over speed.
"""

from __future__ import annotations

import numpy as np


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two vectors via numpy.corrcoef; 0 when either is constant."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def two_vs_two_loop(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2 vs. 2 test exactly as in Dharmaretnam & Fyshe (2018), one pair at a time.

    For each pair (i, j), i < j: rows i and j of both matrices with columns i and j
    dropped; the pair passes iff corr(a_i,b_i) + corr(a_j,b_j) > corr(a_i,b_j) + corr(a_j,b_i).

    Returns
    -------
    passed, margin
        Symmetric w × w matrices (diagonal False / 0).
    """
    w = A.shape[0]
    passed = np.zeros((w, w), dtype=bool)
    margin = np.zeros((w, w))
    for i in range(w):
        for j in range(i + 1, w):
            keep = [k for k in range(w) if k != i and k != j]
            a_i, a_j = A[i, keep], A[j, keep]
            b_i, b_j = B[i, keep], B[j, keep]
            matched = pearson(a_i, b_i) + pearson(a_j, b_j)
            mismatched = pearson(a_i, b_j) + pearson(a_j, b_i)
            passed[i, j] = passed[j, i] = matched > mismatched
            margin[i, j] = margin[j, i] = matched - mismatched
    return passed, margin


def two_vs_two_accuracy_loop(A: np.ndarray, B: np.ndarray) -> float:
    passed, _ = two_vs_two_loop(A, B)
    return float(passed[np.triu_indices(A.shape[0], 1)].mean())


def one_vs_two_loop(img_ref: np.ndarray, word_true_ref: np.ndarray, word_pred_ref: np.ndarray) -> np.ndarray:
    """1 vs. 2 test: passes iff corr(img, true) > corr(img, predicted), row by row."""
    return np.array(
        [pearson(i, t) > pearson(i, p) for i, t, p in zip(img_ref, word_true_ref, word_pred_ref)],
        dtype=bool,
    )


def corr_rows_reference(X: np.ndarray) -> np.ndarray:
    """numpy.corrcoef between rows, with constant rows given correlation 0 (1 with themselves)."""
    X = np.asarray(X, dtype=np.float64)
    constant = np.ptp(X, axis=1) == 0
    C = np.eye(X.shape[0])
    live = np.flatnonzero(~constant)
    if live.size:
        C[np.ix_(live, live)] = np.corrcoef(X[live]) if live.size > 1 else 1.0
    return C


def bhy_reference(p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Yekutieli (2001) step-up procedure, written out.

    With ascending p_(1..m) and c(m) = Σ 1/i, q_(k) = min_{j ≥ k} min(1, p_(j)·m·c(m)/j);
    reject H_(k) for k ≤ max{k : p_(k) ≤ k·alpha / (m·c(m))}.
    """
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    c = sum(1.0 / i for i in range(1, m + 1))
    order = np.argsort(p, kind="mergesort")
    ps = p[order]
    q_sorted = np.empty(m)
    running = 1.0
    for k in range(m - 1, -1, -1):
        running = min(running, ps[k] * m * c / (k + 1), 1.0)
        q_sorted[k] = running
    passing = [k for k in range(m) if ps[k] <= (k + 1) * alpha / (m * c)]
    reject_sorted = np.zeros(m, dtype=bool)
    if passing:
        reject_sorted[: max(passing) + 1] = True
    q = np.empty(m)
    reject = np.empty(m, dtype=bool)
    q[order] = q_sorted
    reject[order] = reject_sorted
    return reject, q


def mim_tf2_literal(model_fn, x, eps, eps_iter, nb_iter, norm, clip_min, clip_max, y, targeted, decay_factor):
    """The cleverhans 4.0.0 TF2 ``momentum_iterative_method`` loop, transcribed op for op
    into torch without any cleverhans helper (tf.reduce_mean → mean, tf.sign → sign, …)."""
    import torch

    red_ind = list(range(1, x.dim()))
    momentum = torch.zeros_like(x)
    adv_x = x.clone()
    i = 0
    while i < nb_iter:
        xv = adv_x.clone().requires_grad_(True)
        logits = model_fn(xv)
        # tf.nn.sparse_softmax_cross_entropy_with_logits: −log softmax(logits)[y], per example
        loss = -torch.log_softmax(logits, dim=1)[torch.arange(len(y)), y]
        if targeted:
            loss = -loss
        grad = torch.autograd.grad(loss.sum(), xv)[0]  # tape.gradient of a vector = of its sum
        avoid_zero_div = 1e-12
        grad = grad / torch.clamp(torch.mean(torch.abs(grad), dim=red_ind, keepdim=True), min=avoid_zero_div)
        momentum = decay_factor * momentum + grad
        if norm == np.inf:
            optimal_perturbation = torch.sign(momentum)
        else:  # L2
            square = torch.clamp(torch.sum(momentum**2, dim=red_ind, keepdim=True), min=avoid_zero_div)
            optimal_perturbation = momentum / torch.sqrt(square)
        adv_x = adv_x + eps_iter * optimal_perturbation
        eta = adv_x - x
        if norm == np.inf:
            eta = torch.clamp(eta, -eps, eps)
        else:
            n2 = torch.sqrt(torch.clamp(torch.sum(eta**2, dim=red_ind, keepdim=True), min=avoid_zero_div))
            eta = eta * torch.clamp(eps / n2, max=1.0)
        adv_x = x + eta
        if clip_min is not None and clip_max is not None:
            adv_x = torch.clamp(adv_x, clip_min, clip_max)
        i += 1
    return adv_x.detach()
