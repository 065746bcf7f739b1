"""Layers: graph nodes of a model, their output shapes, presets and selection.

Layer names are the eval-mode graph node names of
``torchvision.models.feature_extraction.get_graph_node_names`` (e.g. ``layer1.0.relu_1``,
``Mixed_5b.cat``, ``features.29``).  ``pixels`` is a pseudo-layer: the preprocessed
input, the pixel-level baseline of Dharmaretnam & Fyshe (2018).
"""

from __future__ import annotations

import difflib
import fnmatch
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn

#: The preprocessed model input, as a pseudo-layer.
PIXELS = "pixels"


@dataclass(frozen=True)
class Node:
    """A graph node: its name (as ``get_graph_node_names``), kind and position."""

    name: str
    kind: str
    index: int


_MODULE_KINDS: tuple[tuple[type, str], ...] = (
    (nn.ReLU, "relu"),
    (nn.Conv2d, "conv"),
    (nn.Linear, "linear"),
    (nn.BatchNorm2d, "bn"),
    (nn.MaxPool2d, "pool"),
    (nn.AvgPool2d, "pool"),
    (nn.AdaptiveAvgPool2d, "pool"),
    (nn.Dropout, "dropout"),
    (nn.Flatten, "flatten"),
)
_FUNCTION_KINDS: dict[object, str] = {
    F.relu: "relu",
    torch.relu: "relu",
    torch.cat: "cat",
    torch.add: "add",
    operator.add: "add",
    operator.iadd: "add",
    torch.flatten: "flatten",
    F.max_pool2d: "pool",
    F.avg_pool2d: "pool",
    F.adaptive_avg_pool2d: "pool",
    F.dropout: "dropout",
}


def _kind(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        mod = modules.get(str(node.target))
        for cls, kind in _MODULE_KINDS:
            if isinstance(mod, cls):
                return kind
        return type(mod).__name__.lower()
    if node.op == "call_function":
        return _FUNCTION_KINDS.get(node.target, getattr(node.target, "__name__", str(node.target)))
    if node.op == "call_method":
        return "relu" if node.target in ("relu", "relu_") else str(node.target)
    return node.op


def _trace(model: nn.Module):
    """The eval-mode fx graph, its tracer (qualified names) and the model's modules."""
    from torchvision.models.feature_extraction import NodePathTracer

    was_training = model.training
    model.eval()
    try:
        tracer = NodePathTracer()
        graph = tracer.trace(model)
    finally:
        model.train(was_training)
    return graph, tracer, dict(model.named_modules())


def graph_nodes(model: nn.Module) -> list[Node]:
    """The model's eval-mode graph nodes in execution order (without the input placeholder).

    Names are those of ``get_graph_node_names(model)[1]``.
    """
    graph, tracer, modules = _trace(model)
    nodes = []
    for fx_node in graph.nodes:
        if fx_node not in tracer.node_to_qualname or fx_node.op == "placeholder":
            continue
        nodes.append(Node(name=tracer.node_to_qualname[fx_node], kind=_kind(fx_node, modules), index=len(nodes)))
    return nodes


def graph_edges(model: nn.Module) -> tuple[list[Node], list[tuple[str, str]]]:
    """The eval-mode graph as nodes (the input as ``pixels``, then :func:`graph_nodes`)
    and data-flow edges (source name, target name), skip connections and branches included."""
    graph, tracer, modules = _trace(model)
    names: dict[fx.Node, str] = {}
    nodes: list[Node] = []
    for fx_node in graph.nodes:
        if fx_node.op == "placeholder":
            names[fx_node] = PIXELS
            nodes.append(Node(name=PIXELS, kind="input", index=len(nodes)))
        elif fx_node in tracer.node_to_qualname:
            names[fx_node] = tracer.node_to_qualname[fx_node]
            nodes.append(Node(name=names[fx_node], kind=_kind(fx_node, modules), index=len(nodes)))
    edges = [(names[src], names[dst]) for dst in graph.nodes if dst in names
             for src in dst.all_input_nodes if src in names]
    return nodes, list(dict.fromkeys(edges))


def meta_model(model_cfg: dict) -> nn.Module:
    """The architecture of a model config (arch, num_classes, arch_kwargs) on the meta
    device: its graph without reading or allocating any weights."""
    import warnings

    from wordlens.models import ModelSpec, _construct

    spec = ModelSpec(name="graph", arch=model_cfg["arch"], num_classes=model_cfg.get("num_classes"),
                     arch_kwargs=dict(model_cfg.get("arch_kwargs") or {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.device("meta"):
            return _construct(spec).eval()


# --------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------

PresetFn = Callable[[list[Node]], list[str]]
#: arch pattern (fnmatch) → preset name → function of the node list.
PRESETS: dict[str, dict[str, PresetFn]] = {}


def register_preset(arch_pattern: str, name: str, fn: PresetFn) -> None:
    """Register a layer preset for architectures matching ``arch_pattern`` (fnmatch)."""
    PRESETS.setdefault(arch_pattern, {})[name] = fn


def _relu(nodes: list[Node]) -> list[str]:
    return [n.name for n in nodes if n.kind == "relu"]


def _inception_mixed(nodes: list[Node]) -> list[str]:
    """The output of each Mixed_* module: its last concatenation in graph order."""
    last: dict[str, str] = {}
    for n in nodes:
        m = re.match(r"(Mixed_\w+?)\.", n.name)
        if m and n.kind == "cat":
            last[m.group(1)] = n.name
    return list(last.values())


def _inception_activation(nodes: list[Node]) -> list[str]:
    chosen = set(_relu(nodes)) | set(_inception_mixed(nodes))
    return [n.name for n in nodes if n.name in chosen]


def _vgg_conv_dense(nodes: list[Node]) -> list[str]:
    """Every conv layer after its ReLU, the hidden dense layers after their ReLU, and the
    last dense layer (the logits), as in the 2018 paper's Figure 1."""
    linear = [n.name for n in nodes if n.kind == "linear"]
    chosen = set(_relu(nodes)) | set(linear[-1:])
    return [n.name for n in nodes if n.name in chosen]


register_preset("*", "all", lambda nodes: [n.name for n in nodes])
register_preset("*", "relu", _relu)
register_preset("resnet*", "activation", _relu)
register_preset("resnet*", "paper", _relu)
register_preset("inception_v3", "mixed", _inception_mixed)
register_preset("inception_v3", "activation", _inception_activation)
register_preset("inception_v3", "paper", _inception_activation)
register_preset("vgg*", "conv_dense", _vgg_conv_dense)
register_preset("vgg*", "paper", _vgg_conv_dense)


def presets_for(arch: str) -> dict[str, PresetFn]:
    """All presets available for ``arch`` (specific patterns override ``*``)."""
    from wordlens.models import load_builtin_architectures

    load_builtin_architectures()
    out: dict[str, PresetFn] = {}
    for pattern in sorted(PRESETS, key=lambda p: (p != "*", len(p))):
        if fnmatch.fnmatchcase(arch, pattern):
            out.update(PRESETS[pattern])
    return out


def block_map(arch: str, nodes: Sequence[Node]) -> dict[str, str]:
    """The block (residual block, Inception module, VGG stage, fractal block) of every node,
    for averaging results within blocks ("Words as a window", Figures 4–5)."""
    out = {PIXELS: "pixels"}
    stage = 1
    seen_body = False
    for n in nodes:
        name = n.name
        if arch.startswith("resnet") or arch.startswith("wide_resnet") or arch.startswith("resnext"):
            m = re.match(r"(layer\d+\.\d+)\.", name)
            block = m.group(1) if m else ("head" if seen_body else "stem")
            seen_body = seen_body or bool(m)
        elif arch == "inception_v3":
            m = re.match(r"(Mixed_\w+?|Conv2d_\w+?|AuxLogits)\.", name)
            block = m.group(1) if m else ("head" if seen_body else "stem")
            seen_body = seen_body or (m is not None and m.group(1).startswith("Mixed"))
        elif arch.startswith("vgg"):
            if name.startswith("features."):
                block = f"block{stage}"
                if n.kind == "pool":
                    stage += 1
            else:
                block = "classifier" if name.startswith("classifier.") else "head"
        elif arch == "fractalnet":
            m = re.match(r"(blocks\.\d+)\.", name)
            block = m.group(1) if m else "head"
        else:
            block = name.split(".")[0]
        out[name] = block
    return out


# --------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------


def _nearest(name: str, names: Sequence[str], n: int = 5) -> list[str]:
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
    if not close:  # fall back on shared prefixes, e.g. 'layer9.0.relu' → 'layer4.0.relu'
        close = difflib.get_close_matches(name, names, n=n, cutoff=0.3)
    return close


def select_layers(arch: str, nodes: Sequence[Node], selection: str | Sequence[str]) -> list[str]:
    """Resolve a layer selection against a model's graph.

    Each entry of ``selection`` is one of

    - ``pixels``: the preprocessed input (always listed first);
    - ``preset:NAME``: a preset (``activation``/``paper`` for ResNets and Inception-v3,
      ``conv_dense``/``paper`` for VGG, ``mixed`` for Inception-v3, ``relu`` and ``all``
      for any model);
    - ``re:REGEX``: node names fully matching a regular expression;
    - a glob pattern with ``*``, ``?`` or ``[...]`` (e.g. ``layer4.*.relu*``);
    - an exact node name.

    Returns the selected names without duplicates, ``pixels`` first, then graph order.

    Raises
    ------
    ValueError
        For an unknown name (listing the nearest valid names), an unknown preset
        (listing the available ones), or a pattern that matches nothing.
    """
    if isinstance(selection, str):
        selection = [selection]
    if not selection:
        raise ValueError("the layer selection is empty")
    names = [n.name for n in nodes]
    known = set(names)
    chosen: set[str] = set()
    want_pixels = False
    presets = presets_for(arch)
    for entry in selection:
        entry = str(entry)
        if entry == PIXELS:
            want_pixels = True
        elif entry.startswith("preset:"):
            key = entry.split(":", 1)[1]
            if key not in presets:
                raise ValueError(f"unknown layer preset {key!r} for {arch}; available: {sorted(presets)}")
            chosen.update(presets[key](list(nodes)))
        elif entry.startswith("re:"):
            try:
                rx = re.compile(entry[3:])
            except re.error as err:
                raise ValueError(f"layer pattern {entry!r} is not a valid regular expression: {err}") from None
            hits = [n for n in names if rx.fullmatch(n)]
            if not hits:
                raise ValueError(f"layer pattern {entry!r} matches no node of {arch}; e.g. {names[:5]}")
            chosen.update(hits)
        elif any(c in entry for c in "*?["):
            hits = fnmatch.filter(names, entry)
            if not hits:
                raise ValueError(
                    f"layer pattern {entry!r} matches no node of {arch}; nearest names: {_nearest(entry, names)}"
                )
            chosen.update(hits)
        elif entry in known:
            chosen.add(entry)
        else:
            raise ValueError(
                f"unknown layer {entry!r} for {arch}; nearest valid names: {_nearest(entry, names)} "
                f"(list them all with: wordlens layers {arch})"
            )
    ordered = [n for n in names if n in chosen]
    return ([PIXELS] if want_pixels else []) + ordered


def resolve_selection(model_cfg: dict, selection: str | Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Selected layers and their blocks for a model described by a config dict (arch,
    num_classes, arch_kwargs), built on the meta device: no weights are read."""
    model = meta_model(model_cfg)
    nodes = graph_nodes(model)
    chosen = select_layers(model_cfg["arch"], nodes, selection)
    blocks = block_map(model_cfg["arch"], nodes)
    return chosen, {name: blocks[name] for name in chosen}


# --------------------------------------------------------------------------------------
# Feature extraction graph
# --------------------------------------------------------------------------------------


def output_node(nodes: Sequence[Node]) -> str:
    """The node whose value the model returns (its logits): the last graph node."""
    return nodes[-1].name


_VIEW_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose", "expand", "contiguous"}
_VIEW_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, torch.permute, torch.transpose}
_INPLACE_FUNCTIONS = {operator.iadd: operator.add, operator.imul: operator.mul, operator.isub: operator.sub}


def _shallow_out_of_place(module: nn.Module) -> nn.Module:
    """A shallow copy of a parameter-free module with ``inplace=False``."""
    clone = type(module).__new__(type(module))
    clone.__dict__ = {**module.__dict__, "inplace": False}
    return clone


def unique_module_name(modules: dict[str, nn.Module], base: str) -> str:
    """``base``, or ``base_1``, ``base_2``, … — the first name not in ``modules``."""
    name, i = base, 0
    while name in modules:
        i += 1
        name = f"{base}_{i}"
    return name


def protect_outputs(gm: fx.GraphModule, protected: set[fx.Node],
                    copy_module: Callable[[nn.Module], nn.Module] = _shallow_out_of_place) -> bool:
    """Make the in-place operations that would overwrite the output of a ``protected``
    node (or of a view of it) out of place, in ``gm``'s graph; return whether anything
    changed (the caller recompiles).

    An in-place module call gets its own out-of-place copy (``copy_module``; a module may
    be shared by several calls, as ResNet's ReLU is); ``inplace=True`` keyword arguments,
    in-place functions (``operator.iadd`` …) and in-place methods (``x.add_(…)``) become
    their out-of-place forms.  Other in-place operations stay, which keeps the forward
    pass as fast as the model's own.
    """
    modules = dict(gm.named_modules())
    protected = set(protected)
    changed = False
    for node in gm.graph.nodes:
        first = node.args[0] if node.args else None
        if not isinstance(first, fx.Node) or first not in protected:
            continue
        is_view = (node.op == "call_method" and node.target in _VIEW_METHODS) or (
            node.op == "call_function" and node.target in _VIEW_FUNCTIONS)
        if is_view:
            protected.add(node)  # writing into a view writes into the requested tensor
        elif node.op == "call_module" and getattr(modules.get(str(node.target)), "inplace", False) is True:
            clone = copy_module(modules[str(node.target)])
            name = unique_module_name(modules, f"{str(node.target).replace('.', '_')}_out_of_place")
            gm.add_submodule(name, clone)
            modules[name] = clone
            node.target = name
            changed = True
        elif node.kwargs.get("inplace") is True:
            node.kwargs = {**node.kwargs, "inplace": False}
            changed = True
        elif node.op == "call_function" and node.target in _INPLACE_FUNCTIONS:
            node.target = _INPLACE_FUNCTIONS[node.target]
            changed = True
        elif node.op == "call_method" and isinstance(node.target, str) and node.target.endswith("_") \
                and not node.target.startswith("_"):
            node.target = node.target[:-1]
            changed = True
    return changed


def feature_extractor(model: nn.Module, layers: Sequence[str]) -> fx.GraphModule:
    """An FX graph module returning ``{layer: tensor}`` for ``layers`` (no ``pixels``).

    An in-place operation that would overwrite a requested node's output (e.g. the
    in-place ReLU after a residual block's ``add``, or Inception's
    ``F.relu(bn(x), inplace=True)`` when ``…bn`` is requested) is made out-of-place, so
    the recorded value is the node's own output.  Other in-place operations stay in
    place, which keeps the forward pass as fast as the model's own.
    """
    import warnings

    from torchvision.models.feature_extraction import create_feature_extractor

    model.eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="NOTE: The nodes obtained by tracing")
        gm = create_feature_extractor(model, return_nodes={name: name for name in layers})
    output = next(n for n in gm.graph.nodes if n.op == "output")
    changed = protect_outputs(gm, set(output.all_input_nodes))
    if changed:
        gm.recompile()
    return gm.eval()


def layer_shapes(model: nn.Module, input_shape: tuple[int, int, int], nodes: Sequence[Node] | None = None) -> dict[str, tuple]:
    """Output shape (without the batch dimension) of every node, from one forward pass on
    a single zero input; non-tensor outputs are reported as ``()``."""
    nodes = list(nodes) if nodes is not None else graph_nodes(model)
    gm = feature_extractor(model, [n.name for n in nodes])
    device = next(iter(model.parameters()), torch.empty(0)).device
    with torch.no_grad():
        out = gm(torch.zeros((1, *input_shape), device=device))
    return {name: tuple(v.shape[1:]) if isinstance(v, torch.Tensor) else () for name, v in out.items()}


def selection_shapes(model_cfg: dict, layers: Sequence[str]) -> dict[str, list[int]]:
    """Output shape (without the batch dimension) of each of ``layers`` (``pixels``
    included) for a model config, computed on the meta device (no weights, no work)."""
    from wordlens.models import ModelSpec, resolve_preprocessing

    spec = ModelSpec(name="graph", arch=model_cfg["arch"], weights=model_cfg.get("weights"),
                     num_classes=model_cfg.get("num_classes"), preprocessing=dict(model_cfg.get("preprocessing") or {}),
                     arch_kwargs=dict(model_cfg.get("arch_kwargs") or {}))
    input_shape = resolve_preprocessing(spec).input_shape
    model = meta_model(model_cfg)
    wanted = [layer for layer in layers if layer != PIXELS]
    nodes = [n for n in graph_nodes(model) if n.name in set(wanted)]
    shapes = layer_shapes(model, input_shape, nodes) if nodes else {}
    out = {layer: list(shapes.get(layer, ())) for layer in wanted}
    if PIXELS in layers:
        out[PIXELS] = list(input_shape)
    return {layer: out[layer] for layer in layers}
