"""Similarity-encoding statistics: correlation matrices, 2 vs. 2 and 1 vs. 2 tests,
permutation nulls, p-values and Benjamini–Hochberg–Yekutieli FDR.

Definitions follow Dharmaretnam & Fyshe (NAACL 2018) and "Words as a window"
(Neural Networks 137, 2021).

2 vs. 2 test
    ``A`` (image space) and ``B`` (word space) are w × w concept-similarity
    matrices.  For an unordered pair of concepts (i, j), take rows i and j of both
    matrices and drop columns i and j, giving vectors a_i, a_j, b_i, b_j of length
    w − 2.  The pair passes iff::

        corr(a_i, b_i) + corr(a_j, b_j)  >  corr(a_i, b_j) + corr(a_j, b_i)

    (strict).  The accuracy is the fraction of the w(w − 1)/2 pairs that pass.

1 vs. 2 test
    For test image m with true class t and predicted class p, ``img_ref[m]`` holds
    the correlations of the image's representation with R reference concepts'
    representations, ``word_true_ref[m]`` / ``word_pred_ref[m]`` those of the word
    vectors of t / p with the reference concepts' word vectors.  The test passes iff
    ``corr(img_ref[m], word_true_ref[m]) > corr(img_ref[m], word_pred_ref[m])``.

Fast exact computation
    Pearson correlation is invariant to shifting a vector by a constant, so every
    row of A and B is first centred (this keeps the sums below small and the
    arithmetic well conditioned).  For rows x (of A) and y (of B) with the columns
    {i, j} removed, n = w − 2 and::

        corr = (n·Σxy − Σx·Σy) / sqrt((n·Σx² − (Σx)²)(n·Σy² − (Σy)²))

    where every sum is a full-row sum minus the two removed terms: Σx from the row
    sums, Σx² from the row sums of squares, and Σxy from G = A·Bᵀ.  All four
    correlations of every pair are therefore elementwise expressions of w × w
    matrices plus one matrix product.  A permutation of the word space changes
    only B (and so G): each permutation costs one w × w × w product plus O(w²)
    elementwise work, batched over permutations on the torch device.

Ties and undefined correlations
    A pair whose matched and mismatched sums differ by at most ``tie_tol`` is a tie
    and counts as a failure; ties are counted.  A leave-two-out vector with zero
    variance has no defined correlation; it is given correlation 0 (the same
    convention as :func:`corr_rows`), and such pairs are counted as degenerate.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from wordlens.device import resolve_device, resolve_dtype

if TYPE_CHECKING:  # torch is imported where it is used: statistics-only jobs start faster
    import torch

log = logging.getLogger(__name__)

#: Matched − mismatched margins with absolute value at or below this are ties.
TIE_TOL = 1e-10
#: A vector whose population variance is at most this fraction of its mean square is constant.
CONSTANT_RTOL = 1e-12
#: Default memory budget for one batch of permutations (bytes), per device type.  On
#: CPU small batches stay in cache and run fastest; on a GPU large batches amortise
#: the kernel launches.
DEFAULT_BATCH_BYTES = {"cpu": 64 * 2**20, "cuda": 2 * 2**30}
#: Default memory budget for one feature block in :func:`corr_rows` (bytes, float64).
DEFAULT_BLOCK_BYTES = 64 * 2**20

__all__ = [
    "TIE_TOL",
    "FDRResult",
    "OneVsTwoResult",
    "TwoVsTwoPairs",
    "corr_rows",
    "fdr_bhy",
    "one_vs_two",
    "one_vs_two_null",
    "one_vs_two_scores",
    "permutation",
    "permutation_pvalue",
    "two_vs_two",
    "two_vs_two_null",
    "two_vs_two_pairs",
]


# --------------------------------------------------------------------------------------
# Correlation between rows
# --------------------------------------------------------------------------------------


def corr_rows(
    X: Any,
    *,
    block_size: int | None = None,
    return_constant: bool = False,
    device: str | torch.device = "cpu",
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Pearson correlation between the rows of ``X`` (n × k), streamed over features.

    The features are read in blocks of ``block_size`` columns (``X[:, a:b]``), so
    ``X`` may be an in-memory array, an ``h5py.Dataset`` or any object with a 2-D
    ``shape`` and that slicing.  Accumulators are float64; at most O(n²) + O(n ×
    block_size) floats are held at once, whatever k is.

    A row with zero variance (e.g. an all-zero ReLU map) has correlation 0 with
    every other row and 1 with itself; such rows are logged and, with
    ``return_constant=True``, returned as a boolean mask.

    Parameters
    ----------
    X
        n × k array-like, n ≥ 1 rows (items), k ≥ 2 columns (features).
    block_size
        Number of features per block; default keeps a float64 block near 64 MiB.
    return_constant
        Also return the boolean mask of constant rows.
    device
        Torch device for the accumulation (``"cpu"``, ``"cuda"``, ``"auto"``).

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, numpy.ndarray)
        The n × n correlation matrix (float64, symmetric, unit diagonal), and the
        constant-row mask if requested.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, has fewer than 2 features, or holds NaN/inf values.
    """
    import torch

    shape = getattr(X, "shape", None)
    if shape is None:
        X = np.asarray(X)
        shape = X.shape
    if len(shape) != 2:
        raise ValueError(f"corr_rows expects a 2-D array (items × features); got shape {tuple(shape)}")
    n, k = int(shape[0]), int(shape[1])
    if n < 1:
        raise ValueError("corr_rows needs at least one row")
    if k < 2:
        raise ValueError(f"corr_rows needs at least 2 features per row to define a correlation; got {k}")
    if block_size is None:
        block_size = max(1, DEFAULT_BLOCK_BYTES // (8 * n))
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer; got {block_size}")
    dev = resolve_device(device)

    shift: torch.Tensor | None = None
    sums = torch.zeros(n, dtype=torch.float64, device=dev)
    gram = torch.zeros((n, n), dtype=torch.float64, device=dev)
    for start in range(0, k, block_size):
        stop = min(k, start + block_size)
        block, private = _float64_block(X, start, stop, dev)
        if block.shape != (n, stop - start):
            raise ValueError(
                f"X[:, {start}:{stop}] returned shape {tuple(block.shape)}, expected {(n, stop - start)}"
            )
        if not bool(torch.isfinite(block).all()):
            bad = (~torch.isfinite(block)).nonzero()[0].tolist()
            raise ValueError(
                f"corr_rows: non-finite value at row {bad[0]}, feature {start + bad[1]}; "
                "activations must be finite"
            )
        if shift is None:
            # Shifting each row by (an estimate of) its mean avoids cancellation in Σx² − (Σx)²/k.
            shift = block.mean(dim=1, keepdim=True)
        # In place only on memory of our own: otherwise this would write into the caller's
        # array (or crash on a read-only memory map).
        block = block.sub_(shift) if private else block - shift
        sums += block.sum(dim=1)
        gram.addmm_(block, block.T)
        del block

    cov = gram - torch.outer(sums, sums) / k  # k × covariance
    var = torch.diagonal(cov).clamp_min(0.0)
    mean = shift[:, 0] + sums / k
    mean_sq = var / k + mean * mean
    constant = (var / k) <= CONSTANT_RTOL * mean_sq
    inv = torch.where(constant, torch.zeros_like(var), 1.0 / torch.sqrt(torch.where(constant, 1.0, var)))
    corr = cov * inv[:, None] * inv[None, :]
    corr = (corr + corr.T) / 2  # exactly symmetric (the block Gram products need not be)
    corr.clamp_(-1.0, 1.0)
    corr.fill_diagonal_(1.0)
    constant_np = constant.cpu().numpy()
    if constant_np.any():
        log.warning(
            "corr_rows: %d of %d rows are constant (zero variance); their correlations are set to 0: rows %s",
            int(constant_np.sum()),
            n,
            np.flatnonzero(constant_np)[:20].tolist(),
        )
    out = corr.cpu().numpy()
    return (out, constant_np) if return_constant else out


def _float64_block(X: Any, start: int, stop: int, dev: torch.device) -> tuple[torch.Tensor, bool]:
    """``X[:, start:stop]`` as a float64 tensor on ``dev``, and whether its memory is private.

    Private means the tensor shares memory with nothing the caller can see (the block
    was converted to float64, moved to another device, or freshly allocated, e.g. by an
    h5py read), so it may be modified in place.  A float64 block that is a view of the
    caller's array (or of a read-only memory map) comes back as that view, without a
    copy, and must only be read.
    """
    import torch

    arr = np.asarray(X[:, start:stop])
    fresh = (arr.base is None and arr.flags.writeable and arr is not X
             and not (isinstance(X, np.ndarray) and np.may_share_memory(arr, X)))
    if not arr.dtype.isnative:
        arr, fresh = arr.astype(arr.dtype.newbyteorder("=")), True
    with warnings.catch_warnings():
        # A non-writable array (read-only memory map) is only read when it is not private.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        block = torch.as_tensor(arr)
    out = block.to(device=dev, dtype=torch.float64)  # returns ``block`` itself when nothing changes
    return out, fresh or out is not block


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _as_float_matrix(M: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(M, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric matrix: {err}") from err
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix; got {arr.ndim} dimension(s), shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} has {int((~np.isfinite(arr)).sum())} non-finite value(s) (NaN or inf), "
            f"first at [{bad[0]}, {bad[1]}]; all values must be finite"
        )
    return arr


def _validate_square_pair(A: Any, B: Any) -> tuple[np.ndarray, np.ndarray]:
    A = _as_float_matrix(A, "A (image-space similarity matrix)")
    B = _as_float_matrix(B, "B (word-space similarity matrix)")
    for name, M in (("A", A), ("B", B)):
        if M.shape[0] != M.shape[1]:
            raise ValueError(f"{name} must be square (w × w); got shape {M.shape}")
    if A.shape != B.shape:
        raise ValueError(f"A and B must have the same size; got {A.shape} and {B.shape}")
    if A.shape[0] < 4:
        raise ValueError(f"the 2 vs. 2 test needs w ≥ 4 concepts; got w = {A.shape[0]}")
    return A, B


def _validate_tie_tol(tie_tol: float) -> float:
    tie_tol = float(tie_tol)
    if not (tie_tol >= 0.0 and math.isfinite(tie_tol)):
        raise ValueError(f"tie_tol must be a finite number ≥ 0; got {tie_tol}")
    return tie_tol


def _validate_perm_args(n_permutations: int, seed: int, start: int) -> tuple[int, int, int]:
    for name, val in (("n_permutations", n_permutations), ("seed", seed), ("start", start)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
            raise ValueError(f"{name} must be an integer; got {val!r}")
    if n_permutations < 0:
        raise ValueError(f"n_permutations must be ≥ 0; got {n_permutations}")
    if start < 0:
        raise ValueError(f"start must be ≥ 0; got {start}")
    if seed < 0:
        raise ValueError(f"seed must be ≥ 0; got {seed}")
    return int(n_permutations), int(seed), int(start)


def permutation(w: int, seed: int, index: int) -> np.ndarray:
    """The concept relabelling used for permutation number ``index``.

    It depends only on ``(seed, index)`` (``numpy.random.default_rng([seed, index])``),
    so permutations can be computed in any chunks, on any machine, in any order.
    """
    return np.random.default_rng([int(seed), int(index)]).permutation(int(w))


def _batch_size(per_item_bytes: int, batch_size: int | None, max_batch_bytes: int | None, device: torch.device) -> int:
    import torch

    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        return int(batch_size)
    budget = DEFAULT_BATCH_BYTES[device.type] if max_batch_bytes is None else int(max_batch_bytes)
    return max(1, budget // max(1, per_item_bytes))


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="perm", disable=not enabled, leave=False)


# --------------------------------------------------------------------------------------
# 2 vs. 2
# --------------------------------------------------------------------------------------


def _inv_sqrt_var(var: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """1/sqrt(var), with 0 where the variance is zero relative to ``scale`` (= n·Σx²)."""
    import torch

    zero = var <= CONSTANT_RTOL * scale
    return torch.where(zero, torch.zeros_like(var), torch.rsqrt(torch.where(zero, 1.0, var)))


class _TwoVsTwoKernel:
    """The vectorised 2 vs. 2 margins of a fixed A against relabelled copies of B.

    Notation (all w × w matrices indexed [p, r], meaning "row p with the columns
    {p, r} removed"; n = w − 2; rows of A and B centred beforehand):

    - u[p] = Σ_k A[p, k] − A[p, p], so Σx = u[p] − A[p, r]; likewise v for B.
    - IA[p, r] = n / sqrt(n·Σx² − (Σx)²) (0 for a zero-variance vector); IB likewise
      without the factor n, so IA·IB = n / sqrt(VA·VB).

    For a relabelling π, B' = B[π][:, π], v' = v[π], dB' = diag(B)[π] and
    IB' = IB[π][:, π].  With G = A·B'ᵀ, expanding the leave-two-out sums gives

        matched    corr(a_p, b'_p) = IA·IB'   ∘ [c0[p] + B' ∘ H + A ∘ v'[p]/n]
        mismatched corr(a_p, b'_r) = IA·IB'ᵀ ∘ [G − u[p]v'[r]/n + B'ᵀ ∘ K + A ∘ (v'[r]/n − dB'[r])]

    with c0[p] = G[p, p] − u[p]v'[p]/n − dA[p]dB'[p], H = u[p]/n − (1 + 1/n)·A and
    K = u[p]/n − dA[p] − A/n.  H, K, IA, u depend only on A and are computed once;
    per relabelling there are two gathers (B', IB'), one matrix product and about a
    dozen fused elementwise passes.
    """

    def __init__(self, A: np.ndarray, B: np.ndarray, device: torch.device, dtype: torch.dtype):
        import torch

        w = A.shape[0]
        n = float(w - 2)
        self.w, self.n, self.device, self.dtype = w, n, device, dtype

        def side(M: np.ndarray):
            M = torch.as_tensor(M, dtype=torch.float64, device=device)
            M = M - M.mean(dim=1, keepdim=True)  # correlations are shift-invariant
            d = torch.diagonal(M).clone()
            u = M.sum(dim=1) - d
            q = (M * M).sum(dim=1) - d * d
            s_m = u[:, None] - M  # Σx of each leave-two-out vector
            n_q = (q[:, None] - M * M).mul_(n)  # n·Σx²
            inv = _inv_sqrt_var(n_q - s_m * s_m, n_q)  # n·Σx² − (Σx)² = n² × variance
            return M, d, u, inv

        A_c, dA, u, IA = side(A)
        B_c, dB, v, IB = side(B)
        t = lambda x: x.to(dtype=dtype)  # noqa: E731
        self.A = t(A_c)
        self.dA = t(dA)
        self.IA = t(IA * n)
        self.H = t(u[:, None] / n - (1.0 + 1.0 / n) * A_c)
        self.K = t((u / n - dA)[:, None] - A_c / n)
        self.neg_u_n = t(-u / n)
        self.B = t(B_c)
        self.IB = t(IB)
        self.v = t(v)
        self.dB = t(dB)
        self.zero_var_A = (IA == 0).cpu().numpy()
        self.zero_var_B = (IB == 0).cpu().numpy()
        self._ws: dict[str, torch.Tensor] = {}
        self._ws_size = 0

    def _buffers(self, P: int) -> dict[str, torch.Tensor]:
        # Reused between batches: allocating fresh multi-MB tensors for every batch costs
        # page faults that take longer than the arithmetic itself.
        import torch

        if self._ws_size != P:
            shape = (P, self.w, self.w)
            names = ("rows", "Bp", "IBp", "G", "C")
            self._ws = {k: torch.empty(shape, dtype=self.dtype, device=self.device) for k in names}
            self._ws["pass"] = torch.empty(shape, dtype=torch.bool, device=self.device)
            self._ws_size = P
        return self._ws

    @staticmethod
    def _relabel(M: torch.Tensor, perms: torch.Tensor, out: torch.Tensor, rows: torch.Tensor) -> None:
        """out[k] = M[π][:, π] for each row π = perms[k] (index_select + gather: advanced
        indexing is about ten times slower on CPU)."""
        import torch

        P, w = perms.shape
        torch.index_select(M, 0, perms.reshape(-1), out=rows.view(P * w, w))
        torch.gather(rows, 2, perms[:, None, :].expand(P, w, w), out=out)

    def margins(self, perms: torch.Tensor) -> torch.Tensor:
        """Matched − mismatched margin D[k, i, j] for each relabelling ``perms[k]`` (P × w).

        The returned tensor is a workspace buffer, overwritten by the next call.
        """
        import torch

        n = self.n
        A, IA = self.A, self.IA
        ws = self._buffers(perms.shape[0])
        Bp, IBp, G, C, rows = ws["Bp"], ws["IBp"], ws["G"], ws["C"], ws["rows"]
        self._relabel(self.B, perms, Bp, rows)
        self._relabel(self.IB, perms, IBp, rows)
        vp = self.v[perms]
        dBp = self.dB[perms]

        torch.matmul(A, Bp.transpose(1, 2), out=G)
        G.addcmul_(self.neg_u_n[:, None], vp[:, None, :])  # G − u[p]v'[r]/n
        c0 = torch.diagonal(G, dim1=1, dim2=2) - self.dA * dBp

        # C ← matched numerator · IB'
        torch.addcmul(c0[:, :, None], Bp, self.H, out=C)
        C.addcmul_(A, (vp / n)[:, :, None]).mul_(IBp)
        # G ← mismatched numerator
        G.addcmul_(Bp.transpose(1, 2), self.K).addcmul_(A, (vp / n - dBp)[:, None, :])
        # E = corr(a_p, b'_p) − corr(a_p, b'_r); D = E + Eᵀ.
        E = C.addcmul_(G, IBp.transpose(1, 2), value=-1.0).mul_(IA)
        D = torch.add(E, E.transpose(1, 2), out=rows)
        torch.diagonal(D, dim1=1, dim2=2).zero_()  # a concept is not paired with itself
        return D

    def count_passed(self, perms: torch.Tensor, tie_tol: float) -> torch.Tensor:
        """Number of pairs passing (margin > tie_tol) for each relabelling in ``perms``."""
        import torch

        D = self.margins(perms)
        passed = torch.gt(D, tie_tol, out=self._ws["pass"])
        # D is exactly symmetric (a + b == b + a) with a zero diagonal: each pair counts twice.
        return torch.count_nonzero(passed, dim=(1, 2)) // 2


@dataclass(frozen=True)
class TwoVsTwoPairs:
    """Outcome of the 2 vs. 2 test for every pair of concepts.

    Attributes
    ----------
    margin
        w × w symmetric matrix: [corr(a_i,b_i) + corr(a_j,b_j)] − [corr(a_i,b_j) + corr(a_j,b_i)].
    passed
        w × w symmetric boolean matrix, True where the pair passed (margin > tie_tol);
        the diagonal is False.
    tie
        w × w symmetric boolean matrix, True where |margin| ≤ tie_tol (off-diagonal).
    degenerate
        w × w symmetric boolean matrix, True where one of the pair's four
        leave-two-out vectors had zero variance (its correlation was taken as 0).
    tie_tol
        The tie tolerance used.
    """

    margin: np.ndarray
    passed: np.ndarray
    tie: np.ndarray
    degenerate: np.ndarray
    tie_tol: float

    @property
    def w(self) -> int:
        """Number of concepts."""
        return int(self.margin.shape[0])

    @property
    def n_pairs(self) -> int:
        """Number of unordered pairs, w(w − 1)/2."""
        return self.w * (self.w - 1) // 2

    @property
    def n_passed(self) -> int:
        """Number of pairs that passed."""
        return int(np.triu(self.passed, 1).sum())

    @property
    def n_ties(self) -> int:
        """Number of pairs whose matched and mismatched sums tie (counted as failures)."""
        return int(np.triu(self.tie, 1).sum())

    @property
    def n_degenerate(self) -> int:
        """Number of pairs with a zero-variance leave-two-out vector."""
        return int(np.triu(self.degenerate, 1).sum())

    @property
    def accuracy(self) -> float:
        """Fraction of pairs that passed."""
        return self.n_passed / self.n_pairs

    def per_concept(self) -> np.ndarray:
        """2 vs. 2 accuracy of each concept over the w − 1 pairs it belongs to."""
        return self.passed.sum(axis=1) / (self.w - 1)


def two_vs_two_pairs(
    A: Any,
    B: Any,
    *,
    tie_tol: float = TIE_TOL,
    device: str | torch.device = "cpu",
) -> TwoVsTwoPairs:
    """The 2 vs. 2 test for all w(w − 1)/2 pairs, with per-pair outcomes.

    Parameters
    ----------
    A, B
        w × w concept-similarity matrices (image space, word space), w ≥ 4, finite.
    tie_tol
        Margins with absolute value at or below this are ties (failures).
    device
        Torch device for the computation.

    Returns
    -------
    TwoVsTwoPairs
    """
    import torch

    A, B = _validate_square_pair(A, B)
    tie_tol = _validate_tie_tol(tie_tol)
    kernel = _TwoVsTwoKernel(A, B, resolve_device(device), torch.float64)
    identity = torch.arange(kernel.w, device=kernel.device)[None, :]
    margin = kernel.margins(identity)[0].cpu().numpy().copy()
    off = ~np.eye(kernel.w, dtype=bool)
    passed = (margin > tie_tol) & off
    tie = (np.abs(margin) <= tie_tol) & off
    zA, zB = kernel.zero_var_A, kernel.zero_var_B
    degenerate = (zA | zA.T | zB | zB.T) & off
    result = TwoVsTwoPairs(margin=margin, passed=passed, tie=tie, degenerate=degenerate, tie_tol=tie_tol)
    if result.n_degenerate:
        log.warning(
            "2 vs. 2: %d of %d pairs involve a zero-variance leave-two-out vector (correlation taken as 0)",
            result.n_degenerate,
            result.n_pairs,
        )
    return result


def two_vs_two(A: Any, B: Any, *, tie_tol: float = TIE_TOL, device: str | torch.device = "cpu") -> float:
    """2 vs. 2 accuracy between image-space ``A`` and word-space ``B`` (w × w each).

    See :func:`two_vs_two_pairs` for the per-pair outcomes, ties and per-concept accuracy.
    """
    return two_vs_two_pairs(A, B, tie_tol=tie_tol, device=device).accuracy


def two_vs_two_null(
    A: Any,
    B: Any,
    n_permutations: int,
    seed: int,
    start: int = 0,
    *,
    tie_tol: float = TIE_TOL,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "float64",
    batch_size: int | None = None,
    max_batch_bytes: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Permutation null of the 2 vs. 2 accuracy.

    Permutation number p (for p in ``[start, start + n_permutations)``) relabels the
    concepts of the word space with ``π = permutation(w, seed, p)`` — B becomes
    ``B[π][:, π]`` — and recomputes the full 2 vs. 2 accuracy against ``A``.  Value
    p depends only on (seed, p): any chunking gives the same values.

    Parameters
    ----------
    A, B
        w × w similarity matrices (image space, word space).
    n_permutations
        Number of permutations to compute.
    seed
        Seed of the permutation stream (≥ 0).
    start
        Index of the first permutation.
    tie_tol
        Tie tolerance (ties are failures).
    device, dtype
        Torch device (``"auto"``: CUDA when available) and dtype (``"float64"`` default).
    batch_size
        Permutations per batched matrix product; default from ``max_batch_bytes``
        (the results do not depend on it).
    max_batch_bytes
        Workspace budget used to choose the batch size; default 64 MiB on CPU, 2 GiB on CUDA.
    progress
        Show a progress bar.

    Returns
    -------
    numpy.ndarray
        Null accuracies, shape (n_permutations,), float64.
    """
    import torch

    A, B = _validate_square_pair(A, B)
    n_permutations, seed, start = _validate_perm_args(n_permutations, seed, start)
    tie_tol = _validate_tie_tol(tie_tol)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    kernel = _TwoVsTwoKernel(A, B, dev, dt)
    w = kernel.w
    n_pairs = w * (w - 1) // 2
    itemsize = torch.finfo(dt).bits // 8
    size = _batch_size(6 * w * w * itemsize, batch_size, max_batch_bytes, dev)
    out = np.empty(n_permutations, dtype=np.float64)
    with _progress(n_permutations, "2 vs. 2 null", progress) as bar:
        for lo in range(0, n_permutations, size):
            hi = min(n_permutations, lo + size)
            perms = np.stack([permutation(w, seed, start + p) for p in range(lo, hi)])
            counts = kernel.count_passed(torch.as_tensor(perms, device=dev), tie_tol)
            out[lo:hi] = counts.cpu().numpy() / n_pairs
            bar.update(hi - lo)
    return out


# --------------------------------------------------------------------------------------
# 1 vs. 2
# --------------------------------------------------------------------------------------


def _validate_one_vs_two(img_ref: Any, word_true_ref: Any, word_pred_ref: Any):
    I = _as_float_matrix(img_ref, "img_ref")
    T = _as_float_matrix(word_true_ref, "word_true_ref")
    P = _as_float_matrix(word_pred_ref, "word_pred_ref")
    if not (I.shape == T.shape == P.shape):
        raise ValueError(
            "img_ref, word_true_ref and word_pred_ref must have the same shape (m images × R references); "
            f"got {I.shape}, {T.shape}, {P.shape}"
        )
    if I.shape[0] < 1:
        raise ValueError("the 1 vs. 2 test needs at least one test image")
    if I.shape[1] < 3:
        raise ValueError(f"the 1 vs. 2 test needs at least 3 reference concepts; got R = {I.shape[1]}")
    return I, T, P


def _zscore_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows centred and scaled to unit norm (so a dot product is a Pearson r); zero rows where constant."""
    Xc = X - X.mean(axis=1, keepdims=True)
    ss = (Xc * Xc).sum(axis=1)
    constant = ss <= CONSTANT_RTOL * (X * X).sum(axis=1)
    norm = np.sqrt(np.where(constant, 1.0, ss))
    Z = np.where(constant[:, None], 0.0, Xc / norm[:, None])
    return Z, constant


@dataclass(frozen=True)
class OneVsTwoResult:
    """Outcome of the 1 vs. 2 test for each test image.

    Attributes
    ----------
    r_true, r_pred
        corr(img_ref[m], word_true_ref[m]) and corr(img_ref[m], word_pred_ref[m]).
    margin
        r_true − r_pred.
    passed
        True where margin > tie_tol.
    tie
        True where |margin| ≤ tie_tol (counted as failures).
    degenerate
        True where one of the three rows had zero variance (its correlation was taken as 0).
    """

    r_true: np.ndarray
    r_pred: np.ndarray
    margin: np.ndarray
    passed: np.ndarray
    tie: np.ndarray
    degenerate: np.ndarray

    @property
    def accuracy(self) -> float:
        """Fraction of test images that passed."""
        return float(self.passed.mean())

    @property
    def n_ties(self) -> int:
        """Number of ties (counted as failures)."""
        return int(self.tie.sum())


def one_vs_two_scores(
    img_ref: Any, word_true_ref: Any, word_pred_ref: Any, *, tie_tol: float = TIE_TOL
) -> OneVsTwoResult:
    """The 1 vs. 2 test for m test images against R reference concepts, with details.

    Parameters
    ----------
    img_ref
        m × R: correlation of each test image's representation with each reference
        concept's representation.
    word_true_ref, word_pred_ref
        m × R: correlation of the word vector of each image's true / predicted class
        with each reference concept's word vector.
    tie_tol
        Margins with absolute value at or below this are ties (failures).
    """
    I, T, P = _validate_one_vs_two(img_ref, word_true_ref, word_pred_ref)
    tie_tol = _validate_tie_tol(tie_tol)
    zI, cI = _zscore_rows(I)
    zT, cT = _zscore_rows(T)
    zP, cP = _zscore_rows(P)
    r_true = (zI * zT).sum(axis=1)
    r_pred = (zI * zP).sum(axis=1)
    margin = (zI * (zT - zP)).sum(axis=1)
    result = OneVsTwoResult(
        r_true=r_true,
        r_pred=r_pred,
        margin=margin,
        passed=margin > tie_tol,
        tie=np.abs(margin) <= tie_tol,
        degenerate=cI | cT | cP,
    )
    if result.degenerate.any():
        log.warning("1 vs. 2: %d of %d rows have zero variance", int(result.degenerate.sum()), len(margin))
    return result


def one_vs_two(img_ref: Any, word_true_ref: Any, word_pred_ref: Any, *, tie_tol: float = TIE_TOL) -> np.ndarray:
    """Row-wise 1 vs. 2 test: True where corr(img_ref[m], word_true_ref[m]) > corr(img_ref[m], word_pred_ref[m]).

    See :func:`one_vs_two_scores` for the correlations, ties and degenerate rows.
    """
    return one_vs_two_scores(img_ref, word_true_ref, word_pred_ref, tie_tol=tie_tol).passed


def one_vs_two_null(
    img_ref: Any,
    word_true_ref: Any,
    word_pred_ref: Any,
    n_permutations: int,
    seed: int,
    start: int = 0,
    *,
    tie_tol: float = TIE_TOL,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "float64",
    batch_size: int | None = None,
    max_batch_bytes: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Permutation null of the 1 vs. 2 accuracy.

    Permutation number p relabels the R reference concepts of the word space with
    ``π = permutation(R, seed, p)``: the columns of ``word_true_ref`` and
    ``word_pred_ref`` are both reordered by π (the same π for every test image),
    which breaks the correspondence between image-space and word-space reference
    concepts, and the accuracy over all m images is recomputed.  Value p depends
    only on (seed, p).

    Returns
    -------
    numpy.ndarray
        Null accuracies, shape (n_permutations,), float64.
    """
    import torch

    I, T, P = _validate_one_vs_two(img_ref, word_true_ref, word_pred_ref)
    n_permutations, seed, start = _validate_perm_args(n_permutations, seed, start)
    tie_tol = _validate_tie_tol(tie_tol)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    zI, _ = _zscore_rows(I)
    zT, _ = _zscore_rows(T)
    zP, _ = _zscore_rows(P)
    m, R = I.shape
    tI = torch.as_tensor(zI, dtype=dt, device=dev)
    tD = torch.as_tensor(zT - zP, dtype=dt, device=dev)
    itemsize = torch.finfo(dt).bits // 8
    size = _batch_size(2 * m * R * itemsize, batch_size, max_batch_bytes, dev)
    out = np.empty(n_permutations, dtype=np.float64)
    with _progress(n_permutations, "1 vs. 2 null", progress) as bar:
        for lo in range(0, n_permutations, size):
            hi = min(n_permutations, lo + size)
            perms = torch.as_tensor(np.stack([permutation(R, seed, start + p) for p in range(lo, hi)]), device=dev)
            Dp = tD[:, perms].permute(1, 0, 2)  # (P, m, R): word-side columns relabelled
            margins = torch.einsum("mr,pmr->pm", tI, Dp)
            out[lo:hi] = (margins > tie_tol).sum(dim=1).cpu().numpy() / m
            bar.update(hi - lo)
    return out


# --------------------------------------------------------------------------------------
# p-values and FDR
# --------------------------------------------------------------------------------------


def permutation_pvalue(observed: Any, null: Any) -> np.ndarray | float:
    """One-sided permutation p-value, (1 + #{null ≥ observed}) / (1 + n_permutations).

    Never zero (Phipson & Smyth 2010).  ``observed`` may be a scalar with a 1-D
    ``null``, or an array of shape S with ``null`` of shape S + (n_permutations,).
    A NaN observed value gives a NaN p-value.  Ties within a relative 1e-12 count
    as "at least as extreme".
    """
    obs = np.asarray(observed, dtype=np.float64)
    nul = np.asarray(null, dtype=np.float64)
    if nul.ndim != obs.ndim + 1 or nul.shape[:-1] != obs.shape:
        raise ValueError(
            f"null must have shape observed.shape + (n_permutations,); got observed {obs.shape}, null {nul.shape}"
        )
    n = nul.shape[-1]
    if n < 1:
        raise ValueError("the null distribution is empty (n_permutations = 0)")
    if np.isnan(nul).any():
        raise ValueError(f"the null distribution holds {int(np.isnan(nul).sum())} NaN value(s)")
    gamma = 1e-12 * np.maximum(1.0, np.abs(obs))
    with np.errstate(invalid="ignore"):
        count = (nul >= (obs - gamma)[..., None]).sum(axis=-1)
    p = (1.0 + count) / (1.0 + n)
    p = np.where(np.isnan(obs), np.nan, p)
    return float(p) if p.ndim == 0 else p


class FDRResult(NamedTuple):
    """Benjamini–Hochberg–Yekutieli correction of one family of p-values.

    Attributes
    ----------
    reject
        True where the null hypothesis is rejected at FDR ``alpha`` (False for NaN p).
    q
        BY-adjusted p-values (NaN where the input was NaN).
    n_tests
        Number of hypotheses in the family (the non-NaN p-values).
    n_excluded
        Number of NaN p-values excluded from the family.
    """

    reject: np.ndarray
    q: np.ndarray
    n_tests: int
    n_excluded: int


def fdr_bhy(pvalues: Any, alpha: float = 0.05) -> FDRResult:
    """Benjamini–Hochberg–Yekutieli FDR across one family of tests, NaN-safe.

    Uses ``statsmodels.stats.multitest.multipletests(method="fdr_by")`` on the
    non-NaN p-values; NaN p-values are excluded from the family (they would turn
    every adjusted value into NaN), reported with a warning, and get ``q = NaN``,
    ``reject = False``.
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"fdr_bhy expects a 1-D array of p-values; got shape {p.shape}")
    if not (0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    finite = ~np.isnan(p)
    if np.isinf(p).any() or (p[finite] < 0).any() or (p[finite] > 1).any():
        bad = p[finite & ((p < 0) | (p > 1))] if finite.any() else p
        raise ValueError(f"p-values must lie in [0, 1]; got e.g. {bad[:3].tolist()}")
    reject = np.zeros(p.shape, dtype=bool)
    q = np.full(p.shape, np.nan)
    n_excluded = int((~finite).sum())
    if n_excluded:
        warnings.warn(
            f"fdr_bhy: {n_excluded} NaN p-value(s) excluded from the family of {p.size}",
            RuntimeWarning,
            stacklevel=2,
        )
    if finite.any():
        rej, qv, _, _ = multipletests(p[finite], alpha=float(alpha), method="fdr_by")
        reject[finite] = rej
        q[finite] = qv
    return FDRResult(reject=reject, q=q, n_tests=int(finite.sum()), n_excluded=n_excluded)
