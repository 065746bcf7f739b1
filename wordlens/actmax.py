"""Activation maximization and pixel fooling: what a CNN's classes, layers, channels and
neurons respond to.

Activation maximization (Chollet 2016, as Algorithm 1 of Réda & Xu's slides; Dai, "What do
CNN neurons learn", eq. 1–2) looks for an image

    x* = argmax_x  Φ(x) − λ R(x)

by gradient ascent on the pixels with the network's weights fixed.  The objective Φ is a
weighted sum of :class:`Term` s — a class's softmax probability or pre-softmax logit, the
mean of a whole layer, the mean of one channel, or one filter at one spatial position
(a "neuron") — and the regulariser R a weighted sum of the α-norm of the mean-subtracted
image, its total variation V^β (Mahendran & Vedaldi 2015) and its squared L2 norm.  Dai's
robustness trick (§2.4) is a random, seeded transform of the image before every forward
pass: a translation (:func:`torch.roll`), a small rotation and a Gaussian blur.

Fooling (Dai §2.1, Fig. 2) ascends a target class's logit from real images by plain
gradient steps (no regulariser) at several learning rates and records when the model's
top-1 class flips and how far the pixels moved.

Everything works in the model's *pixel space*: images in [0, 1] (C × H × W, after resize
and crop), clipped to [0, 1] after every step; ``normalize`` (e.g.
:meth:`wordlens.models.Preprocessing.normalize`) maps pixels to the model input.  Layers
are named by their FX graph node names (:func:`wordlens.layers.graph_nodes`), and all
requested activations and the logits come from one forward pass of
:func:`wordlens.layers.feature_extractor`.  On CPU every run is deterministic given
:attr:`ActMaxConfig.seed` (the random transforms are drawn from a seeded CPU
:class:`torch.Generator`, so the draws are also the same on a GPU).
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wordlens.layers import _nearest, feature_extractor, graph_nodes, output_node

#: The kinds of objective terms.
KINDS = ("softmax", "logit", "layer", "channel", "neuron")
OPTIMIZERS = ("adam", "normalized")

Normalize = Callable[[torch.Tensor], torch.Tensor]


def _integer(name: str, value: Any, low: int | None) -> int:
    """``value`` as an int (an integral float is accepted), ≥ ``low``; else a ValueError naming ``name``."""
    try:
        ok = not isinstance(value, (bool, np.bool_)) and float(value) == int(value)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or (low is not None and int(value) < low):
        raise ValueError(f"{name} must be an integer{'' if low is None else f' ≥ {low}'}; got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------
# Objectives
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One weighted term of an objective Φ.

    Attributes
    ----------
    kind
        ``"softmax"`` (the softmax probability of class ``index``), ``"logit"`` (the
        pre-softmax logit of class ``index``), ``"layer"`` (the mean of the whole
        activation of ``layer``), ``"channel"`` (the mean of channel ``index`` of
        ``layer`` over its spatial positions; for a 2-D layer the unit itself) or
        ``"neuron"`` (channel ``index`` of ``layer`` at ``position`` = (y, x)).
    index
        The class (softmax, logit) or channel (channel, neuron); None for ``"layer"``.
    layer
        An FX graph node name (e.g. ``"layer1.0.relu"``) for layer, channel and neuron;
        None (or the output node's name) for softmax and logit, which read the model output.
    position
        (y, x) of a neuron, within the layer's H × W.
    weight
        The term's weight in the objective's sum.
    """

    kind: str
    index: int | None = None
    layer: str | None = None
    position: tuple[int, int] | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"objective term kind must be one of {list(KINDS)}; got {self.kind!r}")
        if self.index is not None:
            if isinstance(self.index, bool):
                raise ValueError(f"{self.kind} term: index must be an integer; got {self.index!r}")
            try:
                object.__setattr__(self, "index", operator.index(self.index))
            except TypeError:
                raise ValueError(f"{self.kind} term: index must be an integer; got {self.index!r}") from None
        if self.kind in ("softmax", "logit", "channel", "neuron") and self.index is None:
            what = "class" if self.kind in ("softmax", "logit") else "channel"
            raise ValueError(f"{self.kind} term needs index (the {what})")
        if self.kind == "layer" and self.index is not None:
            raise ValueError(f"layer term: the mean of a whole layer takes no index; got index={self.index}")
        if self.kind in ("layer", "channel", "neuron") and not self.layer:
            raise ValueError(f"{self.kind} term needs layer (an FX graph node name)")
        if self.kind == "neuron":
            if self.position is None or len(self.position) != 2:
                raise ValueError(f"neuron term needs position (y, x); got {self.position!r}")
            try:
                object.__setattr__(self, "position", (operator.index(self.position[0]),
                                                      operator.index(self.position[1])))
            except TypeError:
                raise ValueError(f"neuron term: position must be two integers (y, x); got {self.position!r}") from None
        elif self.position is not None:
            raise ValueError(f"{self.kind} term takes no position (only neuron terms do); got {self.position!r}")
        try:
            weight = float(self.weight)
        except (TypeError, ValueError):
            weight = math.nan
        if isinstance(self.weight, bool) or not math.isfinite(weight):
            raise ValueError(f"{self.kind} term: weight must be a finite number; got {self.weight!r}")
        object.__setattr__(self, "weight", weight)


Objective = Sequence[Term]


class CompiledObjectives:
    """Objectives checked against a model, with the feature extractor that evaluates them.

    Use :func:`compile_objectives`.  ``extractor(inputs)`` returns ``{layer: tensor}`` for
    :attr:`layers` (the output node included); :meth:`values` turns that into Φ per image.

    Attributes
    ----------
    objectives
        One objective (list of :class:`Term`) per image.
    output
        The output node (the logits).
    layers
        The nodes read, output node last.
    extractor
        The :func:`wordlens.layers.feature_extractor` of ``layers``.
    shapes
        Each node's output shape without the batch dimension.
    """

    def __init__(self, objectives: list[list[Term]], output: str, layers: list[str], extractor: nn.Module,
                 shapes: dict[str, tuple[int, ...]], device: torch.device):
        self.objectives, self.output, self.layers = objectives, output, layers
        self.extractor, self.shapes = extractor, shapes
        self.n = len(objectives)
        # Group the terms by (kind, layer) for one batched gather per group.
        groups: dict[tuple[str, str], list[tuple[int, Term]]] = {}
        for i, objective in enumerate(objectives):
            for term in objective:
                layer = output if term.kind in ("softmax", "logit") else str(term.layer)
                groups.setdefault((term.kind, layer), []).append((i, term))
        self._groups = []
        for (kind, layer), members in groups.items():
            rows = torch.tensor([i for i, _ in members], dtype=torch.long, device=device)
            idx = torch.tensor([t.index if t.index is not None else 0 for _, t in members], dtype=torch.long,
                               device=device)
            ys = torch.tensor([t.position[0] if t.position else 0 for _, t in members], dtype=torch.long,
                              device=device)
            xs = torch.tensor([t.position[1] if t.position else 0 for _, t in members], dtype=torch.long,
                              device=device)
            weights = torch.tensor([t.weight for _, t in members], dtype=torch.float32, device=device)
            self._groups.append((kind, layer, rows, idx, ys, xs, weights))

    def values(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Φ of every image (shape (B,), float32) from the extractor's ``{layer: tensor}``."""
        out = None
        for kind, layer, rows, idx, ys, xs, weights in self._groups:
            act = features[layer].float()
            if kind == "logit":
                v = act[rows, idx]
            elif kind == "softmax":
                v = torch.softmax(act, dim=1)[rows, idx]
            elif kind == "layer":
                v = act.flatten(1).mean(dim=1)[rows]
            elif kind == "channel":
                v = act.flatten(2).mean(dim=2)[rows, idx] if act.dim() > 2 else act[rows, idx]
            else:  # neuron
                v = act[rows, idx, ys, xs]
            contrib = torch.zeros(self.n, dtype=torch.float32, device=v.device).index_add(0, rows, weights * v)
            out = contrib if out is None else out + contrib
        if out is None:  # no objectives (an empty batch)
            return torch.zeros(self.n, dtype=torch.float32, device=features[self.output].device)
        return out

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """Φ of every image of a batch of *model inputs* (already normalised)."""
        return self.values(self.extractor(inputs))


def _check_term(i: int, term: Term, nodes: list[str], output: str, shapes: dict[str, tuple[int, ...]] | None) -> None:
    """Check one term against the graph (shapes None) or against the layer shapes."""
    where = f"objective {i}: {term.kind} term"
    if shapes is None:
        if term.kind in ("softmax", "logit"):
            if term.layer not in (None, output):
                raise ValueError(f"{where} reads the model output ({output!r}); layer must be None, "
                                 f"got {term.layer!r} (use a channel term for another layer)")
        elif term.layer not in nodes:
            raise ValueError(f"{where}: unknown layer {term.layer!r}; nearest valid names: "
                             f"{_nearest(str(term.layer), nodes)} (graph node names, e.g. {nodes[:4]})")
        return
    if term.kind in ("softmax", "logit"):
        shape = shapes[output]
        if len(shape) != 1:
            raise ValueError(f"{where}: the model output {output!r} has shape {shape}, not (classes,)")
        if not 0 <= int(term.index) < shape[0]:
            raise ValueError(f"{where}: class index {term.index} out of range; the model has {shape[0]} "
                             f"classes (valid: 0…{shape[0] - 1})")
        return
    shape = shapes[str(term.layer)]
    if term.kind == "layer":
        if len(shape) == 0:
            raise ValueError(f"{where}: layer {term.layer!r} has no activation tensor to average")
        return
    if len(shape) == 0:
        raise ValueError(f"{where}: layer {term.layer!r} has no channels (output shape {shape})")
    n_channels = shape[0]
    if not 0 <= int(term.index) < n_channels:
        raise ValueError(f"{where}: channel {term.index} out of range for layer {term.layer!r} with "
                         f"{n_channels} channels (valid: 0…{n_channels - 1}; output shape {shape})")
    if term.kind == "neuron":
        if len(shape) != 3:
            raise ValueError(f"{where}: layer {term.layer!r} has no spatial extent (output shape {shape}, "
                             "not channels × H × W); use a channel term for a unit of a fully connected layer")
        y, x = term.position  # type: ignore[misc]
        if not (0 <= y < shape[1] and 0 <= x < shape[2]):
            raise ValueError(f"{where}: position (y, x) = {(y, x)} outside layer {term.layer!r}'s "
                             f"{shape[1]} × {shape[2]} (valid: y in 0…{shape[1] - 1}, x in 0…{shape[2] - 1})")


def compile_objectives(model: nn.Module, objectives: Sequence[Objective], input_shape: Sequence[int],
                       device: str | torch.device = "cpu") -> CompiledObjectives:
    """Check ``objectives`` against ``model`` and build the extractor that evaluates them.

    The layer names are checked against the graph first; the indices and positions then
    against the layer shapes of one forward pass of a single zero image (no gradients).

    Parameters
    ----------
    model
        The network (on ``device``), returning logits.
    objectives
        One objective — a non-empty sequence of :class:`Term` — per image.
    input_shape
        (C, H, W) of the model input.
    device
        Where the model lives.

    Returns
    -------
    CompiledObjectives

    Raises
    ------
    ValueError
        For an empty objective, an unknown layer (naming the nearest valid names), a class
        or channel index out of range, a neuron term on a layer without spatial extent, or a
        neuron position outside the layer's H × W.
    """
    device = torch.device(device)
    objs: list[list[Term]] = []
    for i, objective in enumerate(objectives):
        terms = [objective] if isinstance(objective, Term) else list(objective)
        if not terms:
            raise ValueError(f"objective {i} is empty; give at least one Term")
        for term in terms:
            if not isinstance(term, Term):
                raise ValueError(f"objective {i}: expected Term instances, got {type(term).__name__}")
        objs.append(terms)
    graph = graph_nodes(model)
    nodes = [n.name for n in graph]
    out = output_node(graph) if graph else ""
    for i, terms in enumerate(objs):
        for term in terms:
            _check_term(i, term, nodes, out, None)
    wanted = {out} | {str(t.layer) for terms in objs for t in terms if t.kind not in ("softmax", "logit")}
    layers = [n for n in nodes if n in wanted and n != out] + [out]
    extractor = feature_extractor(model, layers)
    with torch.no_grad():
        feats = extractor(torch.zeros((1, *input_shape), device=device))
    shapes = {k: tuple(v.shape[1:]) if isinstance(v, torch.Tensor) else () for k, v in feats.items()}
    for i, terms in enumerate(objs):
        for term in terms:
            _check_term(i, term, nodes, out, shapes)
    return CompiledObjectives(objs, out, layers, extractor, shapes, device)


def evaluate_objectives(model: nn.Module, normalize: Normalize, objectives: Sequence[Objective],
                        images: torch.Tensor, device: str | torch.device = "cpu") -> np.ndarray:
    """Φ of ``objectives[i]`` at ``images[i]`` (pixel space), without regulariser or transform.

    Returns
    -------
    numpy.ndarray
        Shape (N,), float64.
    """
    device = torch.device(device)
    if len(objectives) != images.shape[0]:
        raise ValueError(f"need one objective per image: {len(objectives)} objectives, {images.shape[0]} images")
    was_training = model.training
    try:
        compiled = compile_objectives(model.to(device), objectives, tuple(images.shape[1:]), device)
        with torch.no_grad():
            return compiled(normalize(images.to(device, torch.float32))).double().cpu().numpy()
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------------------
# Regularisers (per image, shape (N,))
# --------------------------------------------------------------------------------------


def _center(x: torch.Tensor, mean: Sequence[float] | torch.Tensor | None, own: bool) -> torch.Tensor:
    if mean is None:
        return x - x.mean(dim=(2, 3), keepdim=True) if own else x
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).reshape(-1)
    if m.numel() not in (1, x.shape[1]):
        raise ValueError(f"mean needs 1 or {x.shape[1]} value(s) (one per channel); got {m.numel()}")
    return x - m.reshape(1, -1, 1, 1)


def alpha_norm(x: torch.Tensor, alpha: float = 6.0, mean: Sequence[float] | torch.Tensor | None = None
               ) -> torch.Tensor:
    """The α-norm regulariser R_α(x) = Σ |x − mean|^α of each image (Mahendran & Vedaldi 2015).

    Parameters
    ----------
    x
        Images, N × C × H × W (pixel space).
    alpha
        The exponent α (6 in Dai §2.4); > 0.
    mean
        The data set's channel mean (C values, or one); None subtracts each image's own
        channel mean.

    Returns
    -------
    torch.Tensor
        Shape (N,).
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0; got {alpha}")
    return _center(x, mean, own=True).abs().pow(alpha).flatten(1).sum(dim=1)


def _safe_pow(s: torch.Tensor, p: float) -> torch.Tensor:
    """s ** p for s ≥ 0 with a zero (not infinite or NaN) gradient where s = 0 and p < 1."""
    if p >= 1:
        return s.pow(p)
    pos = s > 0
    return torch.where(pos, torch.where(pos, s, torch.ones_like(s)).pow(p), torch.zeros_like(s))


def total_variation(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """The total-variation regulariser V^β of each image (Mahendran & Vedaldi 2015; Dai §2.4).

    V^β(x) = Σ_c Σ_{i,j} ((x[c,i,j+1] − x[c,i,j])² + (x[c,i+1,j] − x[c,i,j])²)^(β/2),
    summed over the pixels (i, j) that have both a right and a lower neighbour
    (i < H − 1, j < W − 1).  For β < 2 the gradient where both differences vanish is taken
    as 0 (the value is exact).

    Parameters
    ----------
    x
        Images, N × C × H × W.
    beta
        The exponent β (> 0; 1 is the classical total variation, 2 its smooth version).

    Returns
    -------
    torch.Tensor
        Shape (N,).
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0; got {beta}")
    dx = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    dy = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    s = dx * dx + dy * dy
    v = s if beta == 2 else _safe_pow(s, beta / 2)
    return v.flatten(1).sum(dim=1)


def l2(x: torch.Tensor, mean: Sequence[float] | torch.Tensor | None = None) -> torch.Tensor:
    """The squared L2 norm Σ (x − mean)² of each image (Simonyan et al. 2014); mean None: 0.

    Returns
    -------
    torch.Tensor
        Shape (N,).
    """
    return _center(x, mean, own=False).pow(2).flatten(1).sum(dim=1)


# --------------------------------------------------------------------------------------
# Random transforms (Dai §2.4) and starts
# --------------------------------------------------------------------------------------


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Each image rolled by its own (dy[i], dx[i]) pixels, as ``torch.roll(x[i], (dy, dx), (1, 2))``.

    Differentiable (two gathers), for a whole batch at once.
    """
    n, c, h, w = x.shape
    dev = x.device
    iy = (torch.arange(h, device=dev)[None, :] - dy.to(dev)[:, None]) % h
    x = x.gather(2, iy[:, None, :, None].expand(n, c, h, w))
    ix = (torch.arange(w, device=dev)[None, :] - dx.to(dev)[:, None]) % w
    return x.gather(3, ix[:, None, None, :].expand(n, c, h, w))


def rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Each image rotated about its centre by ``degrees[i]`` (bilinear, reflected border)."""
    theta = degrees.to(x.device, x.dtype) * (math.pi / 180)
    cos, sin = torch.cos(theta), torch.sin(theta)
    zero = torch.zeros_like(cos)
    mat = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur of standard deviation ``sigma`` pixels (radius ⌈3σ⌉,
    replicated border), per channel.  ``sigma`` ≤ 0 returns ``x``."""
    if sigma <= 0:
        return x
    n, c, h, w = x.shape
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    flat = x.reshape(n * c, 1, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), k.reshape(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), k.reshape(1, 1, -1, 1))
    return flat.reshape(n, c, h, w)


def random_transform(x: torch.Tensor, generator: torch.Generator, jitter: int = 0, max_degrees: float = 0.0,
                     blur_sigma: float = 0.0) -> torch.Tensor:
    """Dai's robustness trick: a random translation, rotation and blur of each image.

    Each image is rolled by integers (dy, dx) drawn uniformly from [−jitter, jitter]
    (:func:`translate`), then rotated by an angle drawn uniformly from
    [−max_degrees, max_degrees] (:func:`rotate`), then blurred with σ = ``blur_sigma``
    (:func:`gaussian_blur`).  Disabled parts (0) draw nothing and cost nothing.  The draws
    come from ``generator`` (a CPU generator), so the same seed gives the same transforms
    on any device.
    """
    n = x.shape[0]
    if jitter > 0:
        shifts = torch.randint(-jitter, jitter + 1, (2, n), generator=generator)
        x = translate(x, shifts[0], shifts[1])
    if max_degrees > 0:
        angles = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * max_degrees
        x = rotate(x, angles)
    if blur_sigma > 0:
        x = gaussian_blur(x, blur_sigma)
    return x


def noise_start(n: int, shape: Sequence[int], mean: Sequence[float], std: Sequence[float], seed: int = 0
                ) -> torch.Tensor:
    """Gaussian noise images with the data set's channel mean and std, clipped to [0, 1].

    Parameters
    ----------
    n
        Number of images.
    shape
        (C, H, W).
    mean, std
        Per-channel mean and standard deviation in pixel space (C values, or one).
    seed
        Seed of the CPU generator.

    Returns
    -------
    torch.Tensor
        n × C × H × W, float32, CPU.
    """
    c, h, w = (int(s) for s in shape)
    m = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
    s = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
    if m.numel() not in (1, c) or s.numel() not in (1, c):
        raise ValueError(f"mean and std need 1 or {c} value(s); got {m.numel()} and {s.numel()}")
    if bool((s < 0).any()):
        raise ValueError(f"std must be ≥ 0; got {s.tolist()}")
    z = torch.randn((n, c, h, w), generator=torch.Generator().manual_seed(int(seed)))
    return (z * s.reshape(1, -1, 1, 1) + m.reshape(1, -1, 1, 1)).clamp_(0.0, 1.0)


# --------------------------------------------------------------------------------------
# Activation maximization
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActMaxConfig:
    """Settings of :func:`activation_maximization` (pixel units: images in [0, 1]).

    The defaults are plain Algorithm 1 (no regulariser, no transform) with Adam.  Every value
    is checked when the config is made (a ValueError naming the key): the integers
    (``steps``, ``jitter``, ``blur_every``, ``trace_every``, ``seed``) may be given as
    integral floats (YAML's ``200.0``), the other numbers must be finite.

    Attributes
    ----------
    steps
        Gradient-ascent steps.
    step_size
        Adam's learning rate, or the length of a normalised step (pixel units).
    optimizer
        ``"adam"`` (Adam on the pixels, the slides' choice; per pixel, so each image of a
        batch is optimised independently) or ``"normalized"`` (Chollet's Keras recipe:
        x ← x + step_size · g / mean|g|, the mean per image).
    betas
        Adam's (β₁, β₂).
    lambda_alpha, alpha
        Weight and exponent of :func:`alpha_norm`.
    lambda_tv, beta
        Weight and exponent of :func:`total_variation`.
    lambda_l2
        Weight of :func:`l2`.
    data_mean
        The data set's channel mean for the α-norm and L2 terms; None takes the mean of
        ``normalize`` when it is a :meth:`Preprocessing.normalize <wordlens.models.Preprocessing.normalize>`,
        else each image's own channel mean (α-norm) and 0 (L2).
    jitter
        Largest translation (pixels) of the random transform; 0: none.
    rotate
        Largest rotation (degrees) of the random transform; 0: none.
    blur_sigma
        σ (pixels) of the Gaussian blur of the random transform; 0: none.
    blur_every
        Blur on every ``blur_every``-th step only (1: every step).
    seed
        Seed of the transforms' CPU generator.
    trace_every
        Record Φ and R every ``trace_every`` steps (and at the last step).
    """

    steps: int = 200
    step_size: float = 0.05
    optimizer: str = "adam"
    betas: tuple[float, float] = (0.9, 0.999)
    lambda_alpha: float = 0.0
    alpha: float = 6.0
    lambda_tv: float = 0.0
    beta: float = 2.0
    lambda_l2: float = 0.0
    data_mean: tuple[float, ...] | None = None
    jitter: int = 0
    rotate: float = 0.0
    blur_sigma: float = 0.0
    blur_every: int = 1
    seed: int = 0
    trace_every: int = 10

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"actmax.optimizer must be one of {list(OPTIMIZERS)}; got {self.optimizer!r}")
        # Integers (an integral float, as YAML may give, is taken as its integer).
        for key, low in (("steps", 0), ("jitter", 0), ("blur_every", 1), ("trace_every", 1), ("seed", None)):
            object.__setattr__(self, key, _integer(f"actmax.{key}", getattr(self, key), low))
        # Finite real numbers.
        for key in ("step_size", "lambda_alpha", "alpha", "lambda_tv", "beta", "lambda_l2", "rotate", "blur_sigma"):
            value = getattr(self, key)
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if isinstance(value, bool) or not math.isfinite(number):
                raise ValueError(f"actmax.{key} must be a finite number; got {value!r}")
            object.__setattr__(self, key, number)
        for key in ("step_size", "alpha", "beta"):
            if not getattr(self, key) > 0:
                raise ValueError(f"actmax.{key} must be > 0; got {getattr(self, key)}")
        for key in ("lambda_alpha", "lambda_tv", "lambda_l2", "rotate", "blur_sigma"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"actmax.{key} must be ≥ 0; got {getattr(self, key)}")
        try:
            betas = tuple(float(b) for b in self.betas)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            betas = ()
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"actmax.betas must be two numbers in [0, 1); got {self.betas!r}")
        object.__setattr__(self, "betas", betas)
        if self.data_mean is not None:
            try:
                mean = tuple(float(v) for v in np.ravel(np.asarray(self.data_mean, dtype=object)))
            except (TypeError, ValueError):
                mean = ()
            if not mean or not all(math.isfinite(v) for v in mean):
                raise ValueError(f"actmax.data_mean must be None or one or more finite numbers (one per "
                                 f"channel); got {self.data_mean!r}")
            object.__setattr__(self, "data_mean", mean)

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> ActMaxConfig:
        """A config from a dict (e.g. YAML); unknown keys are an error naming the valid ones."""
        known = set(cls.__dataclass_fields__)
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"actmax: unknown key(s) {sorted(unknown)}; valid keys are {sorted(known)}")
        return cls(**dict(cfg))  # __post_init__ checks every value and converts lists to tuples

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ActMaxResult:
    """Outcome of :func:`activation_maximization` (B images).

    Attributes
    ----------
    images
        The final images x*, B × C × H × W, pixel space, float32, CPU.
    start_value, final_value
        Φ per image at the start and at the end (no regulariser, no transform), shape (B,);
        also as :attr:`initial` and :attr:`final`.
    trace_steps
        The steps of the trace (step k: the image after k updates), shape (T,).
    trace_value, trace_regularizer
        Φ (of the transformed image the step's gradient was taken at) and the weighted
        regulariser λR at those steps, shape (T, B).
    regularizers
        The unweighted regulariser values of the final images: ``alpha_norm``,
        ``total_variation``, ``l2``, each shape (B,).
    start_regularizers
        The same for the start images.
    config
        The settings used.
    """

    images: torch.Tensor
    start_value: np.ndarray
    final_value: np.ndarray
    trace_steps: np.ndarray
    trace_value: np.ndarray
    trace_regularizer: np.ndarray
    regularizers: dict[str, np.ndarray]
    start_regularizers: dict[str, np.ndarray]
    config: ActMaxConfig = field(default_factory=ActMaxConfig)

    @property
    def initial(self) -> np.ndarray:
        """Φ per image at the start (= :attr:`start_value`)."""
        return self.start_value

    @property
    def final(self) -> np.ndarray:
        """Φ per image at the end (= :attr:`final_value`)."""
        return self.final_value


@contextlib.contextmanager
def frozen_weights(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode with ``requires_grad`` False on every parameter; both restored on exit."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        model.eval()
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


def _data_mean(cfg: ActMaxConfig, normalize: Normalize) -> tuple[float, ...] | None:
    if cfg.data_mean is not None:
        return cfg.data_mean
    from wordlens.models import Preprocessing

    owner = getattr(normalize, "__self__", None)
    return tuple(owner.mean) if isinstance(owner, Preprocessing) else None


def regularizer_values(x: torch.Tensor, cfg: ActMaxConfig, mean: Sequence[float] | None = None
                       ) -> dict[str, np.ndarray]:
    """The unweighted regularisers of ``cfg`` (α, β, the mean) for each image, as arrays (N,)."""
    with torch.no_grad():
        x = x.float()
        return {"alpha_norm": alpha_norm(x, cfg.alpha, mean).double().cpu().numpy(),
                "total_variation": total_variation(x, cfg.beta).double().cpu().numpy(),
                "l2": l2(x, mean).double().cpu().numpy()}


class ActMaxRun:
    """One activation-maximization run, step by step (:func:`activation_maximization` uses it).

    A context manager: entering freezes the model's weights (and puts it in eval mode),
    leaving restores them.  :meth:`step` does one gradient-ascent step on :attr:`x`.
    Objectives are checked when the run is made, before any step.
    """

    def __init__(self, model: nn.Module, normalize: Normalize, objectives: Sequence[Objective], start: torch.Tensor,
                 cfg: ActMaxConfig, device: str | torch.device = "cpu"):
        if start.dim() != 4:
            raise ValueError(f"start must be a batch of images B × C × H × W; got shape {tuple(start.shape)}")
        if len(objectives) != start.shape[0]:
            raise ValueError(f"need one objective per start image: {len(objectives)} objectives, "
                             f"{start.shape[0]} start images")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.normalize, self.cfg = normalize, cfg
        self._freeze = frozen_weights(self.model)
        was_training = self.model.training
        try:
            self.compiled = compile_objectives(self.model, objectives, tuple(start.shape[1:]), self.device)
        finally:
            self.model.train(was_training)
        self.mean = _data_mean(cfg, normalize)
        if self.mean is not None and len(self.mean) not in (1, start.shape[1]):
            raise ValueError(f"actmax.data_mean needs 1 or {start.shape[1]} value(s) (one per channel of the "
                             f"start images); got {list(self.mean)}")
        self.x = start.detach().to(self.device, torch.float32).clone().clamp_(0.0, 1.0).requires_grad_(True)
        self.generator = torch.Generator().manual_seed(int(cfg.seed))
        self.optimizer = (torch.optim.Adam([self.x], lr=cfg.step_size, betas=cfg.betas)
                          if cfg.optimizer == "adam" else None)
        self.step_count = 0

    def __enter__(self) -> ActMaxRun:
        self._freeze.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._freeze.__exit__(*exc)

    def regularizer(self, x: torch.Tensor) -> torch.Tensor | None:
        """λR(x) per image (None when every λ is 0)."""
        cfg, r = self.cfg, None
        for lam, fn in ((cfg.lambda_alpha, lambda: alpha_norm(x, cfg.alpha, self.mean)),
                        (cfg.lambda_tv, lambda: total_variation(x, cfg.beta)),
                        (cfg.lambda_l2, lambda: l2(x, self.mean))):
            if lam > 0:
                term = lam * fn()
                r = term if r is None else r + term
        return r

    def step(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One step: transform, forward, Φ − λR, backward, update, clip to [0, 1].

        Returns
        -------
        phi, reg
            Φ of the transformed images and λR of the images before the update (detached).
        """
        cfg, x = self.cfg, self.x
        blur = cfg.blur_sigma if self.step_count % cfg.blur_every == 0 else 0.0
        seen = random_transform(x, self.generator, int(cfg.jitter), cfg.rotate, blur)
        phi = self.compiled(self.normalize(seen))
        reg = self.regularizer(x)
        gain = phi - reg if reg is not None else phi
        (grad,) = torch.autograd.grad(gain.sum(), x)
        with torch.no_grad():
            if self.optimizer is not None:
                x.grad = grad.neg_()  # Adam minimises: the negated gain
                self.optimizer.step()
                x.grad = None
            else:
                scale = grad.abs().flatten(1).mean(dim=1).clamp_min(1e-12)
                x.add_(grad / scale[:, None, None, None], alpha=cfg.step_size)
            x.clamp_(0.0, 1.0)
        self.step_count += 1
        return phi.detach(), (reg.detach() if reg is not None else None)

    def values(self) -> torch.Tensor:
        """Φ of the current images (no transform, no regulariser)."""
        with torch.no_grad():
            return self.compiled(self.normalize(self.x.detach()))


def activation_maximization(
    model: nn.Module,
    normalize: Normalize,
    objectives: Sequence[Objective],
    start: torch.Tensor,
    cfg: ActMaxConfig | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> ActMaxResult:
    """x* = argmax Φ(x) − λR(x) by gradient ascent on the pixels, for a batch of objectives.

    ``objectives[i]`` is optimised from ``start[i]``; all B images form one batch, whose
    loss is the sum of each image's own Φ − λR.  In eval mode each image's gradient is
    its own, and both optimisers act per image, so an image's result does not depend on
    the others (apart from the shared random-transform stream).

    Every step: the images are transformed (:func:`random_transform`, with ``cfg.jitter``,
    ``cfg.rotate`` and ``cfg.blur_sigma`` on every ``cfg.blur_every``-th step), normalised
    and passed once through the feature extractor of the requested layers and the logits;
    Φ is read off the transformed images, R off the untransformed ones; the pixels take an
    Adam (or normalised-gradient) step on Φ − λR and are clipped to [0, 1].  The weights
    are frozen (``requires_grad`` False, eval mode) during the run and restored after it.

    Parameters
    ----------
    model
        The classifier (returns logits); moved to ``device``.
    normalize
        Pixels → model input (e.g. ``Preprocessing.normalize``).
    objectives
        B objectives, each a sequence of :class:`Term` (their weighted sum).
    start
        B × C × H × W start images in [0, 1]: :func:`noise_start` or real images.
    cfg
        :class:`ActMaxConfig` (default: its defaults).
    device
        Where to run.
    progress
        Show a progress bar.

    Returns
    -------
    ActMaxResult

    Raises
    ------
    ValueError
        For bad objectives (see :func:`compile_objectives`), a start batch that does not
        match them, or a ``cfg.data_mean`` with neither 1 nor C values, before any
        optimisation.  (An empty batch, B = 0, returns at once.)
    """
    from tqdm.auto import tqdm

    cfg = cfg or ActMaxConfig()
    run = ActMaxRun(model, normalize, objectives, start, cfg, device)
    steps, phis, regs = [], [], []
    b = start.shape[0]
    with run:
        start_value = run.values().double().cpu().numpy()
        start_reg = regularizer_values(run.x.detach(), cfg, run.mean)
        for k in tqdm(range(cfg.steps if b else 0), desc="activation maximization", unit="step", disable=not progress):
            phi, reg = run.step()
            if k % cfg.trace_every == 0 or k == cfg.steps - 1:
                steps.append(k)
                phis.append(phi.double().cpu().numpy())
                regs.append(reg.double().cpu().numpy() if reg is not None else np.zeros(b))
        final_value = run.values().double().cpu().numpy()
        images = run.x.detach().cpu().clone()
    return ActMaxResult(
        images=images, start_value=start_value, final_value=final_value,
        trace_steps=np.asarray(steps, dtype=np.int64),
        trace_value=np.stack(phis) if phis else np.zeros((0, b)),
        trace_regularizer=np.stack(regs) if regs else np.zeros((0, b)),
        regularizers=regularizer_values(images, cfg, run.mean), start_regularizers=start_reg, config=cfg)


# --------------------------------------------------------------------------------------
# Fooling (Dai §2.1)
# --------------------------------------------------------------------------------------


@dataclass
class FoolingResult:
    """Outcome of :func:`fool` for N images × L learning rates.

    Attributes
    ----------
    images
        The fooled images x_f, N × L × C × H × W, pixel space, float32, CPU.
    diff
        diff_{h,w} = sqrt(Σ_c (x_f − x_s)²), N × L × H × W (Dai §2.1).
    flip_step
        The first k (0…steps) at which the image after k steps has top-1 = target; −1 if
        none; N × L.
    final_pred
        Top-1 class of x_f, N × L.
    target_confidence, source_confidence
        Softmax probability of the target / source class at x_f, N × L.
    linf, l2
        ‖x_f − x_s‖∞ and ‖x_f − x_s‖₂ (all pixels), N × L.
    learning_rates
        The L learning rates.
    steps
        Gradient steps taken.
    source_class
        The source class of each image (N,).
    target_class
        The target class.
    """

    images: torch.Tensor
    diff: torch.Tensor
    flip_step: np.ndarray
    final_pred: np.ndarray
    target_confidence: np.ndarray
    source_confidence: np.ndarray
    linf: np.ndarray
    l2: np.ndarray
    learning_rates: np.ndarray
    steps: int
    source_class: np.ndarray
    target_class: int

    def to_frame(self):
        """One row per (image, learning rate): image, lr, flip_step, steps, final_pred,
        target_confidence, source_confidence, linf, l2, source_class, target_class, fooled."""
        import pandas as pd

        n, n_lr = self.flip_step.shape
        return pd.DataFrame({
            "image": np.repeat(np.arange(n), n_lr),
            "lr": np.tile(self.learning_rates, n),
            "flip_step": self.flip_step.reshape(-1),
            "steps": self.steps,
            "final_pred": self.final_pred.reshape(-1),
            "target_confidence": self.target_confidence.reshape(-1),
            "source_confidence": self.source_confidence.reshape(-1),
            "linf": self.linf.reshape(-1),
            "l2": self.l2.reshape(-1),
            "source_class": np.repeat(self.source_class, n_lr),
            "target_class": self.target_class,
            "fooled": self.final_pred.reshape(-1) == self.target_class,
        })


def fool(
    model: nn.Module,
    normalize: Normalize,
    images: torch.Tensor,
    source_class: int | Sequence[int],
    target_class: int,
    learning_rates: Sequence[float],
    steps: int,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
) -> FoolingResult:
    """Pixel fooling (Dai §2.1): ascend the target class's logit from real images.

    For each image x_s and learning rate η, ``steps`` plain gradient-ascent steps
    x ← clip(x + η ∇ₓ logit_target(x), 0, 1) — SGD on the pixels as in Dai, no regulariser,
    no transform, weights frozen.  The (image, η) pairs run as batches of ``batch_size``.

    Parameters
    ----------
    model
        The classifier (returns logits); moved to ``device``.
    normalize
        Pixels → model input.
    images
        N × C × H × W source images in [0, 1].
    source_class
        The images' class (one for all, or one per image): for ``source_confidence``.
    target_class
        The class whose logit is raised.
    learning_rates
        The step sizes η (pixel units per unit of logit gradient).
    steps
        Gradient steps per (image, η).
    device
        Where to run.
    batch_size
        (image, η) pairs per batch.

    Returns
    -------
    FoolingResult

    Raises
    ------
    ValueError
        For a class that is not an integer or out of range, a ``source_class`` with neither
        1 nor N values, no or negative learning rates, ``steps`` not an integer ≥ 0, or images
        that are not N × C × H × W in [0, 1] (NaN included) — before any optimisation.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be N × C × H × W; got shape {tuple(images.shape)}")
    n = images.shape[0]
    lrs = np.asarray(list(learning_rates), dtype=np.float64)
    if lrs.ndim != 1 or lrs.size == 0 or not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
        raise ValueError(f"learning_rates must be a non-empty sequence of finite numbers ≥ 0; got {learning_rates!r}")
    steps = _integer("steps", steps, 0)
    batch_size = _integer("batch_size", batch_size, 1)
    target_class = _integer("target_class", target_class, None)
    src_values = np.asarray(source_class)
    if src_values.ndim > 1 or (src_values.ndim == 1 and src_values.size not in (1, n)):
        raise ValueError(f"source_class must be one class or one per image ({n}); got {src_values.size} values")
    src = np.array([_integer("source_class", v, None) for v in np.broadcast_to(src_values, (n,))], dtype=np.int64)
    if n and not bool(((images >= 0) & (images <= 1)).all()):
        finite = images[torch.isfinite(images)]
        raise ValueError(f"images must be in pixel space [0, 1] (no NaN); got min "
                         f"{float(finite.min()) if finite.numel() else math.nan:.4g}, max "
                         f"{float(finite.max()) if finite.numel() else math.nan:.4g}, "
                         f"{int((~torch.isfinite(images)).sum())} non-finite value(s)")
    device = torch.device(device)
    model = model.to(device)
    with frozen_weights(model):
        with torch.no_grad():
            n_classes = model(normalize(torch.zeros((1, *images.shape[1:]), device=device))).shape[1]
        for name, c in [("target_class", np.asarray([target_class]))] + [("source_class", src)]:
            bad = c[(c < 0) | (c >= n_classes)]
            if bad.size:
                raise ValueError(f"{name} {int(bad[0])} out of range; the model has {n_classes} classes "
                                 f"(valid: 0…{n_classes - 1})")
        n_lr = len(lrs)
        pairs = n * n_lr
        img_of = np.repeat(np.arange(n), n_lr)
        lr_of = np.tile(lrs, n)
        shape = tuple(images.shape[1:])
        out = torch.empty((pairs, *shape), dtype=torch.float32)
        flip = np.full(pairs, -1, dtype=np.int64)
        pred = np.empty(pairs, dtype=np.int64)
        tconf = np.empty(pairs)
        sconf = np.empty(pairs)
        for lo in range(0, pairs, batch_size):
            hi = min(pairs, lo + batch_size)
            x = images[torch.as_tensor(img_of[lo:hi])].to(device, torch.float32).clone()
            eta = torch.as_tensor(lr_of[lo:hi], dtype=torch.float32, device=device)[:, None, None, None]
            first = torch.full((hi - lo,), -1, dtype=torch.long, device=device)
            for k in range(steps + 1):
                xk = x.detach().requires_grad_(k < steps)
                with torch.set_grad_enabled(k < steps):
                    logits = model(normalize(xk))
                hit = (logits.argmax(dim=1) == target_class) & (first < 0)
                first = torch.where(hit, torch.full_like(first, k), first)
                if k == steps:
                    break
                (grad,) = torch.autograd.grad(logits[:, target_class].sum(), xk)
                x = (x + eta * grad).clamp_(0.0, 1.0)
            probs = torch.softmax(logits.detach().float(), dim=1)
            out[lo:hi] = x.detach().cpu()
            flip[lo:hi] = first.cpu().numpy()
            pred[lo:hi] = probs.argmax(dim=1).cpu().numpy()
            tconf[lo:hi] = probs[:, target_class].cpu().numpy()
            rows = torch.as_tensor(src[img_of[lo:hi]], device=device)[:, None]
            sconf[lo:hi] = probs.gather(1, rows)[:, 0].cpu().numpy()
    source = images.detach().to(torch.float32).cpu()[torch.as_tensor(img_of, dtype=torch.long)]
    delta = out - source
    diff = delta.pow(2).sum(dim=1).sqrt()
    flat = delta.reshape(pairs, int(np.prod(shape))).double()
    return FoolingResult(
        images=out.reshape(n, n_lr, *shape), diff=diff.reshape(n, n_lr, *shape[1:]),
        flip_step=flip.reshape(n, n_lr), final_pred=pred.reshape(n, n_lr),
        target_confidence=tconf.reshape(n, n_lr), source_confidence=sconf.reshape(n, n_lr),
        linf=(flat.abs().amax(dim=1).numpy() if pairs and flat.shape[1] else np.zeros(pairs)).reshape(n, n_lr),
        l2=flat.norm(dim=1).numpy().reshape(n, n_lr), learning_rates=lrs, steps=int(steps), source_class=src,
        target_class=int(target_class))
