"""Attribution: feature maps, Grad-CAM, guided backpropagation and DeconvNet projections.

Visual interpretability for the layers wordlens encodes: what a layer's channels
respond to (feature maps, as in Réda & Xu's "Visualizing and interpreting CNNs"),
which image regions support a class (Grad-CAM of Selvaraju et al., Dai's Figure 1c),
and the projection of one channel back to pixel space (guided backpropagation of
Springenberg et al.; the DeconvNet of Zeiler & Fergus, 2014).

Layers are addressed by wordlens's graph node names (:mod:`wordlens.layers`, e.g.
``layer1.0.relu``, ``layer4.1.relu_1`` for the second call of a reused ReLU,
``blocks.0.pool``, ``fc``), plus ``pixels`` (the model input).  Captum's layer and
neuron methods hook an ``nn.Module``, but a node may be a functional operation or one
call of a module used several times; :func:`probe` therefore traces the model and
inserts an ``nn.Identity`` right after the node, which Captum hooks instead.

All functions take *model inputs* (already normalised, e.g. with
``Preprocessing.normalize``), put the model in eval mode, leave its parameters and
their ``requires_grad`` flags as they were (no ``.grad`` is accumulated), and are
deterministic on the CPU.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import fx, nn

from wordlens.layers import (
    PIXELS,
    _nearest,
    _trace,
    feature_extractor,
    graph_nodes,
    layer_shapes,
    protect_outputs,
    unique_module_name,
)

__all__ = ["probe", "feature_maps", "top_channels", "grad_cam", "guided_backprop", "deconvnet"]

_PROBE_NAME = "wordlens_probe"
_FUNCTIONAL_RELUS = {F.relu, F.relu_, torch.relu, torch.relu_}
_CAPTUM_RELU_WARNING = "Setting backward hooks on ReLU activations"


# --------------------------------------------------------------------------------------
# Probe: an nn.Identity after any graph node
# --------------------------------------------------------------------------------------


def _model_label(model: nn.Module) -> tuple[str, bool]:
    """The model's architecture name if known (``arch`` attribute, FractalNet), else its
    class name; and whether it is an architecture name (for the CLI hint)."""
    arch = getattr(model, "arch", None)
    if isinstance(arch, str) and arch:
        return arch, True
    from wordlens.fractalnet import FractalNet

    if isinstance(model, FractalNet):
        return "fractalnet", True
    return type(model).__name__, False


def _unknown_layer(model: nn.Module, layer: str, names: Sequence[str]) -> ValueError:
    label, is_arch = _model_label(model)
    hint = f" (list them all with: wordlens layers {label})" if is_arch else ""
    return ValueError(
        f"unknown layer {layer!r} for {label}; nearest valid names: {_nearest(str(layer), list(names))}{hint}"
    )


def _out_of_place_copy(module: nn.Module) -> nn.Module:
    """A copy of a parameter-free module (ReLU, dropout, …) with ``inplace=False``."""
    clone = nn.ReLU() if type(module) is nn.ReLU else copy.deepcopy(module)
    if hasattr(clone, "inplace"):
        clone.inplace = False
    return clone


def _build_probe(model: nn.Module, layer: str) -> tuple[fx.GraphModule, nn.Identity, fx.Node, dict[fx.Node, str]]:
    """:func:`probe`, also returning the identity's graph node and the node names."""
    model.eval()
    graph, tracer, _ = _trace(model)
    qualname = {n: tracer.node_to_qualname[n] for n in graph.nodes
                if n in tracer.node_to_qualname and n.op != "placeholder"}
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if layer == PIXELS:
        target = placeholders[0]
    else:
        found = [n for n, q in qualname.items() if q == layer]
        if not found:
            raise _unknown_layer(model, layer, [PIXELS, *qualname.values()])
        target = found[0]
    for p in placeholders:
        qualname[p] = PIXELS

    gm = fx.GraphModule(tracer.root, graph, f"{type(model).__name__}Probe")
    modules = dict(gm.named_modules())

    # Every call of an nn.ReLU module gets its own out-of-place module: Captum's
    # guided backprop / deconvolution hooks then see exactly one forward call per module
    # (ResNet calls each block's ReLU twice), and no in-place write can touch a tensor
    # Captum hooked.
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(modules.get(str(node.target)), nn.ReLU):
            name = unique_module_name(modules, f"{str(node.target).replace('.', '_')}_probe")
            clone = _out_of_place_copy(modules[str(node.target)])
            gm.add_submodule(name, clone)
            modules[name] = clone
            node.target = name

    ident = nn.Identity()
    ident_name = unique_module_name(modules, _PROBE_NAME)
    gm.add_submodule(ident_name, ident)
    modules[ident_name] = ident
    with gm.graph.inserting_after(target):
        ident_node = gm.graph.call_module(ident_name, (target,))
    target.replace_all_uses_with(ident_node, delete_user_cb=lambda user: user is not ident_node)
    qualname[ident_node] = f"{layer} (probe)"

    # In-place operations that would overwrite the identity's output (e.g. ResNet's
    # ``out += identity`` after ``…bn2``) are made out-of-place, so what a hook on the
    # identity records stays the node's own output (as in wordlens.layers.feature_extractor).
    protect_outputs(gm, {ident_node}, copy_module=_out_of_place_copy)
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return gm.eval(), ident, ident_node, qualname


def probe(model: nn.Module, layer: str) -> tuple[fx.GraphModule, nn.Module]:
    """The model as an FX graph module with an ``nn.Identity`` right after node ``layer``.

    The model is traced with the tracer of :mod:`wordlens.layers` (eval mode, the node
    names of ``get_graph_node_names``); an ``nn.Identity`` submodule is inserted after
    the node ``layer`` and every user of the node reads the identity's output instead.
    Hooks on the identity (Captum's layer and neuron methods) therefore see the node's
    output, whether the node is a module, one call of a reused module (``relu_1``) or a
    functional operation.

    The graph module shares the model's parameters and returns what the model returns
    (its logits).  Each call of an ``nn.ReLU`` module runs on its own out-of-place copy
    of that module, and in-place operations that would overwrite the identity's output
    are made out-of-place; the values computed are the model's.

    Parameters
    ----------
    model
        The model; put in eval mode.
    layer
        A graph node name (``wordlens layers ARCH`` lists them) or ``pixels`` (the
        identity then follows the input).

    Returns
    -------
    graph_module, identity
        The traced model with the identity inserted, and the identity module.

    Raises
    ------
    ValueError
        For an unknown layer, naming it, the model's architecture (or class) and the
        nearest valid names.
    """
    gm, ident, _, _ = _build_probe(model, layer)
    return gm, ident


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Eval mode and parameters without ``requires_grad`` (restored afterwards), so no
    gradient can accumulate on them."""
    model.eval()
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def _check_input(x: torch.Tensor, what: str, ndim: int | None = None) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: x must be a tensor of model inputs; got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{what}: x must be a batch of images (N × C × H × W); got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: x is an empty batch")


def _format_shape(shape: Sequence[int]) -> str:
    return " × ".join(["N", *(str(s) for s in shape[1:])])


def _probe_shapes(gm: fx.GraphModule, ident: nn.Module, x: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes of the identity's output and of the model output, for one input."""
    seen: dict[str, tuple[int, ...]] = {}

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"the layer's output is a {type(output).__name__}, not a tensor")
        seen["layer"] = tuple(output.shape)

    handle = ident.register_forward_hook(hook)
    try:
        with torch.no_grad():
            out = gm(x[:1])
    finally:
        handle.remove()
    return seen["layer"], tuple(out.shape) if isinstance(out, torch.Tensor) else ()


def _inputs(x: torch.Tensor) -> torch.Tensor:
    """A copy of x that requires grad (Captum then leaves the caller's tensor alone)."""
    return x.detach().clone().requires_grad_(True)


# --------------------------------------------------------------------------------------
# Feature maps
# --------------------------------------------------------------------------------------


def feature_maps(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The activations of ``layer`` for the inputs ``x`` (no gradient).

    Parameters
    ----------
    model
        The model; put in eval mode.
    x
        Model inputs (already normalised), N × C × H × W.
    layer
        A graph node name or ``pixels``.

    Returns
    -------
    torch.Tensor
        The layer's output for ``x``: N × C × H × W for convolutional layers (other
        layers give their own shape, e.g. N × classes for ``fc``); a copy of ``x``
        for ``pixels``.

    Raises
    ------
    ValueError
        For an unknown layer (with the nearest valid names).
    """
    _check_input(x, "feature_maps")
    with _frozen(model), torch.no_grad():
        if layer == PIXELS:
            return x.detach().clone()
        names = [n.name for n in graph_nodes(model)]
        if layer not in names:
            raise _unknown_layer(model, layer, [PIXELS, *names])
        return feature_extractor(model, [layer])(x)[layer].detach()


def top_channels(acts: torch.Tensor, k: int) -> list[int]:
    """The ``k`` channels with the highest mean activation.

    Parameters
    ----------
    acts
        Activations, N × C × H × W (the mean is over images and positions) or
        C × H × W (over positions).
    k
        How many channels, 0 ≤ k ≤ C.

    Returns
    -------
    list of int
        Channel indices by mean activation, descending; ties by index (lower first).
        Channels whose mean is NaN come last.

    Raises
    ------
    ValueError
        For another number of dimensions or k outside [0, C].
    """
    if not isinstance(acts, torch.Tensor) or acts.ndim not in (3, 4):
        shape = tuple(acts.shape) if isinstance(acts, torch.Tensor) else type(acts).__name__
        raise ValueError(f"top_channels needs activations N × C × H × W or C × H × W; got {shape}")
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"top_channels: k must be an integer; got {k!r}")
    dims = (0, 2, 3) if acts.ndim == 4 else (1, 2)
    means = acts.detach().to(torch.float64).mean(dims).cpu().tolist()
    if not 0 <= k <= len(means):
        raise ValueError(f"top_channels: k must be between 0 and the {len(means)} channels; got {k}")
    nan = [m != m for m in means]
    order = sorted(range(len(means)), key=lambda c: (nan[c], 0.0 if nan[c] else -means[c], c))
    return order[:k]


# --------------------------------------------------------------------------------------
# Grad-CAM
# --------------------------------------------------------------------------------------


def _targets(target: int | Sequence[int], n: int, out_shape: tuple[int, ...]) -> int | list[int]:
    n_classes = out_shape[-1] if len(out_shape) == 2 else None
    if isinstance(target, torch.Tensor):
        target = target.tolist()
    if isinstance(target, bool):
        raise TypeError(f"grad_cam: target must be a class index or one per image; got {target!r}")
    values = [target] if isinstance(target, int) else list(target)
    if not isinstance(target, int) and len(values) != n:
        raise ValueError(f"grad_cam: {len(values)} targets for {n} images (give one class, or one per image)")
    for t in values:
        if isinstance(t, bool) or not isinstance(t, int):
            raise TypeError(f"grad_cam: targets must be class indices (int); got {t!r}")
        if n_classes is not None and not 0 <= t < n_classes:
            raise ValueError(f"grad_cam: target class {t} is out of range for a model with {n_classes} outputs")
    return target if isinstance(target, int) else values


def grad_cam(model: nn.Module, x: torch.Tensor, layer: str, target: int | Sequence[int],
             upsample: bool = True) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): which positions of ``layer`` support class ``target``.

    ``cam = ReLU(Σ_k α_k A^k)`` with ``A^k`` the k-th channel of the layer's output and
    ``α_k`` the spatial mean of ``∂y_c / ∂A^k``, where ``y_c`` is the pre-softmax
    output (logit) of class ``c``.  Computed with ``captum.attr.LayerGradCam`` on
    :func:`probe`.

    Parameters
    ----------
    model
        The model (returning logits); put in eval mode.
    x
        Model inputs (already normalised), N × C × H × W.
    layer
        A graph node with an N × C × H × W output (a convolutional layer, its
        activation, a pooling or join node, or ``pixels``).
    target
        The class, for all images, or one class per image.
    upsample
        Interpolate the map to the input's H × W (bilinear, ``align_corners=False``,
        with ``captum.attr.LayerAttribution.interpolate``); else keep the layer's
        resolution.

    Returns
    -------
    torch.Tensor
        N × H × W, non-negative.

    Raises
    ------
    ValueError
        For an unknown layer, a layer without spatial extent (naming the model's
        convolutional layers), or targets that do not fit.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    _check_input(x, "grad_cam", ndim=4)
    with _frozen(model):
        gm, ident, _, _ = _build_probe(model, layer)
        shape, out_shape = _probe_shapes(gm, ident, x)
        if len(shape) != 4:
            shapes = layer_shapes(model, tuple(x.shape[1:]))
            conv = [name for name, s in shapes.items() if len(s) == 3]
            listed = conv if len(conv) <= 24 else [*conv[:8], "…", *conv[-16:]]
            raise ValueError(
                f"Grad-CAM needs a convolutional layer (N × C × H × W output); {layer} gives shape "
                f"{_format_shape(shape)}; convolutional layers of this model ({len(conv)}): {', '.join(listed)}"
            )
        targets = _targets(target, x.shape[0], out_shape)
        cam = LayerGradCam(gm, ident).attribute(_inputs(x), target=targets, relu_attributions=True)
        if upsample:
            cam = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")
    return cam[:, 0].detach()


# --------------------------------------------------------------------------------------
# Guided backpropagation and DeconvNet
# --------------------------------------------------------------------------------------


def _functional_relus(ident_node: fx.Node, qualname: dict[fx.Node, str]) -> list[str]:
    """Functional ReLUs upstream of the probe (their backward is not overridden)."""
    seen: set[fx.Node] = set()
    stack = [ident_node]
    found = []
    while stack:
        node = stack.pop()
        for src in node.all_input_nodes:
            if src in seen:
                continue
            seen.add(src)
            stack.append(src)
            if (src.op == "call_function" and src.target in _FUNCTIONAL_RELUS) or (
                    src.op == "call_method" and src.target in ("relu", "relu_")):
                found.append(qualname.get(src, src.name))
    return found


def _project(method: str, model: nn.Module, x: torch.Tensor, layer: str, channel: int) -> torch.Tensor:
    from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop

    cls = {"guided_backprop": NeuronGuidedBackprop, "deconvnet": NeuronDeconvolution}[method]
    _check_input(x, method)
    if isinstance(channel, bool) or not isinstance(channel, int):
        raise TypeError(f"{method}: channel must be an integer; got {channel!r}")
    with _frozen(model):
        gm, ident, ident_node, qualname = _build_probe(model, layer)
        shape, _ = _probe_shapes(gm, ident, x)
        if len(shape) < 2:
            raise ValueError(f"{method}: {layer} gives shape {_format_shape(shape)}, which has no channels")
        n_channels = shape[1]
        if not 0 <= channel < n_channels:
            raise ValueError(
                f"{method}: channel {channel} is out of range for layer {layer}, which has {n_channels} "
                f"channels (0 … {n_channels - 1})"
            )
        functional = _functional_relus(ident_node, qualname)
        if functional:
            warnings.warn(
                f"{method}: {len(functional)} ReLU(s) upstream of {layer} are functional (e.g. "
                f"{', '.join(functional[:3])}); Captum overrides the backward of nn.ReLU modules only, so "
                f"these pass ordinary gradients", stacklevel=3)
        dims = tuple(range(1, len(shape) - 1))

        def selector(out: torch.Tensor) -> torch.Tensor:
            picked = out[:, channel]
            return picked.sum(dims) if dims else picked

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_CAPTUM_RELU_WARNING)
            attr = cls(gm, ident).attribute(_inputs(x), neuron_selector=selector)
    return attr.detach()


def guided_backprop(model: nn.Module, x: torch.Tensor, layer: str, channel: int) -> torch.Tensor:
    """Guided backpropagation (Springenberg et al. 2015) of one channel of ``layer`` to the input.

    The gradient of the channel's spatial sum ``Σ_{h,w} A^channel_{h,w}`` with respect
    to ``x``, where every ``nn.ReLU`` passes back only positive gradients at positions
    where its forward input was positive: ``grad_in = max(grad_out, 0) · [input > 0]``.
    Computed with ``captum.attr.NeuronGuidedBackprop`` on :func:`probe` (max pooling
    routes the gradient to its maxima, as the DeconvNet's switches).

    Only ReLUs that are ``nn.ReLU`` modules are overridden; functional ReLUs
    (``F.relu``, ``torch.relu``, ``x.relu()``, as in torchvision's Inception-v3) keep
    their ordinary gradient, and a warning names them.  torchvision's ResNets and VGGs
    and wordlens's FractalNet use modules; in-place and reused ReLU modules are
    handled (each call runs on its own out-of-place copy in the probe).

    Parameters
    ----------
    model
        The model; put in eval mode.
    x
        Model inputs (already normalised), N × C × H × W.
    layer
        A graph node name or ``pixels``.
    channel
        The channel (dimension 1 of the layer's output; the unit for an N × D layer).

    Returns
    -------
    torch.Tensor
        Same shape as ``x``.

    Raises
    ------
    ValueError
        For an unknown layer or a channel out of range (naming the layer's channel count).
    """
    return _project("guided_backprop", model, x, layer, channel)


def deconvnet(model: nn.Module, x: torch.Tensor, layer: str, channel: int) -> torch.Tensor:
    """DeconvNet projection (Zeiler & Fergus 2014) of one channel of ``layer`` to the input.

    As :func:`guided_backprop`, but every ``nn.ReLU`` applies the ReLU to the signal
    going back, ignoring its forward input: ``grad_in = max(grad_out, 0)``; convolutions
    are run transposed and max pooling uses the forward pass's switches.  Computed
    with ``captum.attr.NeuronDeconvolution`` on :func:`probe`.

    Only ``nn.ReLU`` modules are overridden; functional ReLUs keep their ordinary
    gradient, and a warning names them.

    Parameters
    ----------
    model
        The model; put in eval mode.
    x
        Model inputs (already normalised), N × C × H × W.
    layer
        A graph node name or ``pixels``.
    channel
        The channel (dimension 1 of the layer's output).

    Returns
    -------
    torch.Tensor
        Same shape as ``x``.

    Raises
    ------
    ValueError
        For an unknown layer or a channel out of range (naming the layer's channel count).
    """
    return _project("deconvnet", model, x, layer, channel)
