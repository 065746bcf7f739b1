"""Targeted adversarial images: the Momentum Iterative Method (Dong et al. 2018) in PyTorch.

cleverhans 4.0.0 ships MIM for TensorFlow 2 only
(``cleverhans/tf2/attacks/momentum_iterative_method.py``).  :func:`momentum_iterative_method`
follows that algorithm step for step on cleverhans' PyTorch helpers
(:func:`cleverhans.torch.utils.optimize_linear`, :func:`cleverhans.torch.utils.clip_eta`).
Each of ``nb_iter`` iterations

1. takes the gradient g of the summed softmax cross-entropy (negated when targeted) at
   the current adversarial input;
2. normalises it per example by its mean absolute value, ``g / max(1e-12, mean|g|)``;
3. accumulates momentum ``m ← decay_factor · m + g``;
4. steps ``x_adv ← x_adv + optimize_linear(m, eps_iter, norm)`` (sign(m) · eps_iter for L∞,
   m / ‖m‖₂ · eps_iter for L2);
5. projects onto the ε-ball around the clean input, ``x + clip_eta(x_adv − x, norm, eps)``;
6. clips to ``[clip_min, clip_max]``.

There is no random start, so the attack is deterministic given its inputs.

The attack runs in the model's *pixel space* (preprocessed images in [0, 1], before the
per-channel normalisation): ``model_fn`` = normalise → network.  ε, the step size and the
clip range are therefore in [0, 1] pixel units.  The papers' ε = 0.3 was given for
cleverhans-era Inception-v3 inputs in [−1, 1]; in [0, 1] units that is 0.15.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

CLEVERHANS_REQUIREMENT = "cleverhans==4.0.0"
NORMS = {"inf": np.inf, "2": 2}


def _cleverhans_utils():
    """cleverhans' PyTorch helpers, with advice when cleverhans is missing."""
    try:
        from cleverhans.torch.utils import clip_eta, optimize_linear
    except ImportError as err:
        raise ImportError(
            f"the adversarial attacks need {CLEVERHANS_REQUIREMENT}; install it without its stale "
            f"TensorFlow/test dependencies: pip install --no-deps {CLEVERHANS_REQUIREMENT} "
            "(`make demo` and `make test` do this)"
        ) from err
    return optimize_linear, clip_eta


def parse_norm(norm: Any) -> float:
    """``"inf"``/``np.inf`` → np.inf, ``2``/``"2"`` → 2; anything else is an error."""
    key = "inf" if (isinstance(norm, float) and math.isinf(norm)) else str(norm).lower()
    if key not in NORMS:
        raise ValueError(f"norm must be 'inf' (L∞) or 2 (L2); got {norm!r}")
    return NORMS[key]


def momentum_iterative_method(
    model_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    eps: float = 0.3,
    eps_iter: float = 0.06,
    nb_iter: int = 10,
    norm: float = np.inf,
    clip_min: float | None = None,
    clip_max: float | None = None,
    y: torch.Tensor | None = None,
    targeted: bool = False,
    decay_factor: float = 1.0,
    sanity_checks: bool = True,
) -> torch.Tensor:
    """The Momentum Iterative Method (cleverhans TF2 algorithm, in PyTorch).

    Parameters
    ----------
    model_fn
        Callable returning logits (N × classes) for an input batch.
    x
        Clean inputs (N × ...).
    eps
        Radius of the ε-ball (in ``norm``) around ``x``.
    eps_iter
        Step size per iteration.
    nb_iter
        Number of iterations.
    norm
        ``np.inf`` or 2.
    clip_min, clip_max
        Valid input range (both or neither).
    y
        Target labels when ``targeted``, else the labels to move away from (default:
        the model's predictions on ``x``).
    targeted
        Minimise the loss of ``y`` instead of maximising it.
    decay_factor
        Momentum decay μ (0: the Basic Iterative Method with a normalised gradient).
    sanity_checks
        Check that ``x`` lies in the clip range and that the result stays in it.

    Returns
    -------
    torch.Tensor
        The adversarial inputs (detached), same shape and dtype as ``x``.
    """
    optimize_linear, clip_eta = _cleverhans_utils()
    norm = parse_norm(norm)
    if eps < 0 or eps_iter < 0:
        raise ValueError(f"eps and eps_iter must be ≥ 0; got eps={eps}, eps_iter={eps_iter}")
    if nb_iter < 0:
        raise ValueError(f"nb_iter must be ≥ 0; got {nb_iter}")
    if (clip_min is None) != (clip_max is None):
        raise ValueError("give both clip_min and clip_max, or neither")
    if clip_min is not None and clip_min > clip_max:
        raise ValueError(f"clip_min ({clip_min}) must be ≤ clip_max ({clip_max})")
    if targeted and y is None:
        raise ValueError("a targeted attack needs the target labels y")
    x = x.detach()
    if sanity_checks and clip_min is not None:
        if bool((x < clip_min).any()) or bool((x > clip_max).any()):
            raise ValueError(f"inputs lie outside the clip range [{clip_min}, {clip_max}]: "
                             f"min {float(x.min()):.4g}, max {float(x.max()):.4g}")
    if y is None:
        with torch.no_grad():
            y = model_fn(x).argmax(dim=1)
    red = list(range(1, x.dim()))
    momentum = torch.zeros_like(x)
    adv_x = x.clone()
    for _ in range(nb_iter):
        adv = adv_x.clone().requires_grad_(True)
        loss = F.cross_entropy(model_fn(adv), y, reduction="sum")
        if targeted:
            loss = -loss
        (grad,) = torch.autograd.grad(loss, adv)
        avoid_zero_div = torch.tensor(1e-12, dtype=grad.dtype, device=grad.device)
        grad = grad / torch.maximum(avoid_zero_div, grad.abs().mean(dim=red, keepdim=True))
        momentum = decay_factor * momentum + grad
        adv_x = adv_x + optimize_linear(momentum, eps_iter, norm)
        adv_x = x + clip_eta(adv_x - x, norm, eps)
        if clip_min is not None:
            adv_x = torch.clamp(adv_x, clip_min, clip_max)
    if sanity_checks and clip_min is not None:
        assert bool((adv_x >= clip_min).all()) and bool((adv_x <= clip_max).all())
    return adv_x.detach()


@dataclass(frozen=True)
class AttackConfig:
    """Settings of the targeted MIM attack, in [0, 1] pixel units.

    ``step_size`` None means ``epsilon / iterations``.
    """

    epsilon: float = 0.15
    iterations: int = 20
    decay: float = 1.0
    step_size: float | None = None
    norm: str = "inf"
    clip_min: float = 0.0
    clip_max: float = 1.0
    batch_size: int = 32

    def __post_init__(self) -> None:
        parse_norm(self.norm)
        if self.epsilon <= 0:
            raise ValueError(f"adversarial.epsilon must be > 0; got {self.epsilon}")
        if self.iterations < 1:
            raise ValueError(f"adversarial.iterations must be ≥ 1; got {self.iterations}")
        if self.decay < 0:
            raise ValueError(f"adversarial.decay must be ≥ 0; got {self.decay}")
        if self.step_size is not None and self.step_size <= 0:
            raise ValueError(f"adversarial.step_size must be > 0 (or null for epsilon / iterations); got {self.step_size}")
        if self.clip_min >= self.clip_max:
            raise ValueError(f"adversarial.clip_min ({self.clip_min}) must be < clip_max ({self.clip_max})")
        if self.batch_size < 1:
            raise ValueError(f"adversarial.batch_size must be ≥ 1; got {self.batch_size}")

    @property
    def eps_iter(self) -> float:
        return self.step_size if self.step_size is not None else self.epsilon / self.iterations

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> AttackConfig:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: (str(v) if k == "norm" else v) for k, v in cfg.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AttackResult:
    """Adversarial images and what the model makes of them (one entry per attack)."""

    images: torch.Tensor  # N × C × H × W pixels, float32, CPU
    pred_index: np.ndarray
    pred_prob: np.ndarray
    target_prob: np.ndarray
    success: np.ndarray
    linf: np.ndarray
    l2: np.ndarray


def run_attacks(
    model: torch.nn.Module,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    pixels: torch.Tensor,
    targets: np.ndarray,
    cfg: AttackConfig,
    device: torch.device,
    progress: bool = True,
) -> AttackResult:
    """Targeted MIM on ``pixels`` (N × C × H × W in [0, 1]) towards class ``targets[i]``, in batches.

    An attack succeeds when the model's top-1 class of the adversarial image is its target.
    """
    from tqdm.auto import tqdm

    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)

    def model_fn(p: torch.Tensor) -> torch.Tensor:
        return model(normalize(p))

    n = pixels.shape[0]
    targets = np.array(targets, dtype=np.int64)  # a writable copy
    if targets.shape != (n,):
        raise ValueError(f"need one target per image: {n} images, targets of shape {targets.shape}")
    out = torch.empty_like(pixels, dtype=torch.float32, device="cpu")
    pred = np.empty(n, np.int64)
    pred_prob = np.empty(n)
    target_prob = np.empty(n)
    with tqdm(total=n, desc="MIM attacks", unit="img", disable=not progress) as bar:
        for lo in range(0, n, cfg.batch_size):
            hi = min(n, lo + cfg.batch_size)
            x = pixels[lo:hi].to(device, torch.float32)
            t = torch.as_tensor(targets[lo:hi], device=device)
            adv = momentum_iterative_method(model_fn, x, eps=cfg.epsilon, eps_iter=cfg.eps_iter,
                                            nb_iter=cfg.iterations, norm=parse_norm(cfg.norm),
                                            clip_min=cfg.clip_min, clip_max=cfg.clip_max, y=t, targeted=True,
                                            decay_factor=cfg.decay)
            with torch.no_grad():
                probs = torch.softmax(model_fn(adv).float(), dim=1)
            top = probs.argmax(dim=1)
            pred[lo:hi] = top.cpu().numpy()
            pred_prob[lo:hi] = probs.gather(1, top[:, None])[:, 0].cpu().numpy()
            target_prob[lo:hi] = probs.gather(1, t[:, None])[:, 0].cpu().numpy()
            out[lo:hi] = adv.cpu()
            bar.update(hi - lo)
    delta = (out - pixels.to(torch.float32)).reshape(n, -1).double()
    return AttackResult(images=out, pred_index=pred, pred_prob=pred_prob, target_prob=target_prob,
                        success=pred == targets, linf=delta.abs().amax(dim=1).numpy() if n else np.zeros(0),
                        l2=delta.norm(dim=1).numpy())


def attack_manifest_images(spec: Any, source: Any, manifest: Any, todo: Any, cfg: AttackConfig,
                           class_ids: Any, device: str = "auto") -> tuple[torch.Tensor, AttackResult, Any]:
    """Run the targeted attacks of a table of attacks on their source images.

    The source images are manifest rows ``todo["source_row"]`` of ``source``, in the
    model's pixel space ([0, 1], after its resize and crop); the attacks are
    deterministic (torch seeded with 0, cuDNN deterministic), so a rerun, on a GPU too,
    gives the same images.

    Parameters
    ----------
    spec, source, manifest
        The :class:`~wordlens.models.ModelSpec`, the :class:`~wordlens.images.ImageSource`
        and its manifest (DataFrame).
    todo
        Attacks (columns attack, source_row, target_index, …: the rows of
        :func:`wordlens.selection.select_attacks`).
    class_ids
        The class id of each model output.

    Returns
    -------
    clean, result, table
        The clean images, the :class:`AttackResult`, and ``todo`` with the outcome
        columns (success, linf, l2, pred_index, pred_concept, pred_prob, target_prob) and
        the attack settings.
    """
    from wordlens.device import resolve_device
    from wordlens.images import ManifestImages
    from wordlens.models import build_model, resolve_preprocessing

    man = manifest.set_index("row", drop=False)
    pre = resolve_preprocessing(spec)
    dev = resolve_device(device)
    images = ManifestImages(man.loc[todo["source_row"]], source, pre.pixel_transform())
    clean = torch.stack([images[i] for i in range(len(images))]) if len(todo) else torch.zeros((0, *pre.input_shape))
    torch.manual_seed(0)
    torch.backends.cudnn.deterministic = True  # the same images on every rerun, GPU included
    torch.backends.cudnn.benchmark = False
    if len(todo):
        result = run_attacks(build_model(spec, dev), pre.normalize, clean, todo["target_index"].to_numpy(), cfg, dev)
    else:
        result = AttackResult(images=clean.clone(), pred_index=np.zeros(0, np.int64), pred_prob=np.zeros(0),
                              target_prob=np.zeros(0), success=np.zeros(0, bool), linf=np.zeros(0), l2=np.zeros(0))
    ids = list(class_ids)
    table = todo.assign(success=result.success, linf=result.linf, l2=result.l2, pred_index=result.pred_index,
                        pred_concept=[ids[i] if 0 <= i < len(ids) else "" for i in result.pred_index],
                        pred_prob=result.pred_prob, target_prob=result.target_prob, epsilon=cfg.epsilon,
                        step_size=cfg.eps_iter, iterations=cfg.iterations, decay=cfg.decay, norm=str(cfg.norm))
    return clean, result, table


def gather_attack_chunks(parts: Any, tables: Any, adv_set: str, model: str, image_set: str
                         ) -> tuple[torch.Tensor, torch.Tensor, Any, Any]:
    """All attack chunks of a (model, image set) in attack order, and the adversarial image set.

    Parameters
    ----------
    parts
        Per chunk, the saved ``{"images", "clean", "attack"}`` tensors.
    tables
        Per chunk, its attack table (:func:`attack_manifest_images`).
    adv_set
        The name of the image set of the successful adversarial images.

    Returns
    -------
    adversarial, clean, table, manifest
        The images in attack order; the table with model, image_set and ``discarded``
        (failed attacks, which are not analysed); the manifest of the successful attacks
        (``index`` is the image's position in ``adversarial``).

    Raises
    ------
    ValueError
        If the chunks' images and tables disagree (stale chunk files).
    """
    import pandas as pd

    from wordlens.images import MANIFEST_COLUMNS

    table = pd.concat(list(tables), ignore_index=True)
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
        "index": np.flatnonzero(table["success"].to_numpy(dtype=bool)).astype(np.int64),
        "concept": ok["source"], "class_index": ok["source_class_index"].astype(np.int64),
        "group": np.zeros(len(ok), np.int64), "row": np.arange(len(ok), dtype=np.int64),
        "attack": ok["attack"], "target": ok["target"], "category": ok["category"],
        "category_rank": ok["category_rank"], "source_row": ok["source_row"],
    })
    assert list(manifest.columns[:len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    return adv, clean, table, manifest
