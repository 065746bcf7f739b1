"""Models: torchvision classifiers by name, our own architectures, local checkpoints,
and the preprocessing that goes with each."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wordlens import io as wio

#: Our own architectures (name → constructor taking ``num_classes`` and keyword arguments),
#: with their default preprocessing.  Other modules register here (e.g. FractalNet).
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}
ARCHITECTURE_PREPROCESSING: dict[str, dict[str, Any]] = {}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


def load_builtin_architectures() -> None:
    """Import the modules that register our own architectures (FractalNet)."""
    import wordlens.fractalnet  # noqa: F401


def register_architecture(name: str, preprocessing: dict[str, Any] | None = None):
    """Decorator registering a model constructor under ``name``."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        ARCHITECTURES[name] = fn
        if preprocessing is not None:
            ARCHITECTURE_PREPROCESSING[name] = dict(preprocessing)
        return fn

    return deco


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes a model input.

    ``resize`` (shorter side, pixels) then a ``crop`` × ``crop`` centre crop, conversion
    to ``channels`` channels and to [0, 1] floats ("pixel space"), then per-channel
    normalisation ``(x − mean) / std`` (the model's input).
    """

    resize: int | None
    crop: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    channels: int = 3
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"preprocessing.channels must be 1 or 3; got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(
                f"preprocessing.mean and .std need {self.channels} value(s) (one per channel); "
                f"got mean={list(self.mean)}, std={list(self.std)}"
            )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"preprocessing.std values must be positive; got {list(self.std)}")
        if self.crop < 1 or (self.resize is not None and self.resize < 1):
            raise ValueError(f"preprocessing sizes must be positive; got resize={self.resize}, crop={self.crop}")
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(f"preprocessing.interpolation must be one of {_INTERPOLATIONS}; got {self.interpolation!r}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the model input."""
        return (self.channels, self.crop, self.crop)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    def pixel_transform(self) -> Callable:
        """PIL image → float tensor in [0, 1] of shape :attr:`input_shape`."""
        from torchvision.transforms import v2 as T

        mode = {"nearest": T.InterpolationMode.NEAREST, "bilinear": T.InterpolationMode.BILINEAR,
                "bicubic": T.InterpolationMode.BICUBIC}[self.interpolation]
        steps: list[Callable] = [_ConvertMode("RGB" if self.channels == 3 else "L")]
        if self.resize is not None:
            steps.append(T.Resize(self.resize, interpolation=mode, antialias=True))
        steps += [T.CenterCrop(self.crop), T.PILToTensor(), T.ToDtype(torch.float32, scale=True)]
        return T.Compose(steps)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """[0, 1] pixels (N × C × H × W) → model input."""
        mean = torch.as_tensor(self.mean, dtype=pixels.dtype, device=pixels.device)[:, None, None]
        std = torch.as_tensor(self.std, dtype=pixels.dtype, device=pixels.device)[:, None, None]
        return (pixels - mean) / std


class _ConvertMode:
    """PIL mode conversion (grayscale sets to 3 channels and back)."""

    def __init__(self, mode: str):
        self.mode = mode

    def __call__(self, img):
        return img if img.mode == self.mode else img.convert(self.mode)


def preprocessing_from_weights(weights: Any) -> dict[str, Any]:
    """Resize/crop/normalisation taken from a torchvision weights entry's own transforms."""
    t = weights.transforms()
    interp = getattr(t, "interpolation", None)
    return {
        "resize": int(t.resize_size[0]) if getattr(t, "resize_size", None) else None,
        "crop": int(t.crop_size[0]),
        "mean": tuple(float(x) for x in t.mean),
        "std": tuple(float(x) for x in t.std),
        "channels": 3,
        "interpolation": getattr(interp, "value", "bilinear") if interp is not None else "bilinear",
    }


@dataclass(frozen=True)
class ModelSpec:
    """A model as named in the config.

    Attributes
    ----------
    name
        Label used in result paths (e.g. ``resnet50``).
    arch
        A torchvision classification model (``resnet50``, ``inception_v3``, ``vgg16``, …)
        or one of ours (:data:`ARCHITECTURES`).
    weights
        A torchvision weights name for ``arch`` (e.g. ``IMAGENET1K_V1``, ``DEFAULT``) or
        ``None`` for random initialisation.
    checkpoint
        A local state-dict file (loaded with ``weights_only=True``) replacing ``weights``.
    num_classes
        Number of output classes (default: the architecture's).
    preprocessing
        Overrides of the preprocessing (keys of :class:`Preprocessing`).
    arch_kwargs
        Extra constructor arguments.
    seed
        Seed for random initialisation (``weights: null``).
    """

    name: str
    arch: str
    weights: str | None = None
    checkpoint: str | None = None
    num_classes: int | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    @classmethod
    def from_config(cls, name: str, cfg: dict[str, Any]) -> ModelSpec:
        known = {"arch", "weights", "checkpoint", "num_classes", "preprocessing", "arch_kwargs", "seed"}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"model {name!r}: unknown key(s) {sorted(unknown)}; valid keys are {sorted(known)}")
        if "arch" not in cfg:
            raise ValueError(f"model {name!r}: 'arch' is required (e.g. resnet50)")
        return cls(
            name=name,
            arch=str(cfg["arch"]),
            weights=cfg.get("weights"),
            checkpoint=cfg.get("checkpoint"),
            num_classes=cfg.get("num_classes"),
            preprocessing=dict(cfg.get("preprocessing") or {}),
            arch_kwargs=dict(cfg.get("arch_kwargs") or {}),
            seed=int(cfg.get("seed", 0)),
        )


def _torchvision_models() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _check_arch(arch: str) -> None:
    load_builtin_architectures()
    if arch in ARCHITECTURES:
        return
    names = _torchvision_models()
    if arch not in names:
        import difflib

        close = difflib.get_close_matches(arch, names + sorted(ARCHITECTURES), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown architecture {arch!r}{hint} Valid: torchvision classification models "
            f"(torchvision.models.list_models()) or one of ours: {sorted(ARCHITECTURES)}"
        )


def torchvision_weights(arch: str, weights: str) -> Any:
    """The torchvision weights entry ``weights`` of ``arch`` (e.g. ``IMAGENET1K_V1``)."""
    import torchvision

    enum = torchvision.models.get_model_weights(arch)
    try:
        return enum[weights]
    except KeyError:
        valid = [w.name for w in enum] + ["DEFAULT"]
        raise ValueError(f"unknown weights {weights!r} for {arch}; valid: {valid}, or null for random init") from None


def resolve_preprocessing(spec: ModelSpec) -> Preprocessing:
    """The preprocessing of a model: its weights' own transforms (or the architecture's
    defaults), updated with the config's overrides."""
    base: dict[str, Any]
    load_builtin_architectures()
    if spec.arch in ARCHITECTURES:
        base = dict(ARCHITECTURE_PREPROCESSING.get(spec.arch, {"resize": None, "crop": 32}))
    else:
        _check_arch(spec.arch)
        import torchvision

        # Without weights the architecture's default weights still describe its input.
        w = torchvision_weights(spec.arch, spec.weights) if spec.weights else torchvision.models.get_model_weights(spec.arch).DEFAULT
        base = preprocessing_from_weights(w)
    unknown = set(spec.preprocessing) - {"resize", "crop", "mean", "std", "channels", "interpolation"}
    if unknown:
        raise ValueError(
            f"model {spec.name!r}: unknown preprocessing key(s) {sorted(unknown)}; "
            "valid: resize, crop, mean, std, channels, interpolation"
        )
    base.update(spec.preprocessing)
    base["mean"] = tuple(base["mean"])
    base["std"] = tuple(base["std"])
    return Preprocessing(**base)


def _construct(spec: ModelSpec) -> nn.Module:
    load_builtin_architectures()
    kwargs = dict(spec.arch_kwargs)
    if spec.num_classes is not None:
        kwargs["num_classes"] = int(spec.num_classes)
    if spec.arch in ARCHITECTURES:
        return ARCHITECTURES[spec.arch](**kwargs)
    import torchvision

    _check_arch(spec.arch)
    if spec.arch in ("inception_v3", "googlenet") and not spec.weights:
        kwargs.setdefault("init_weights", True)  # torchvision's current default, without its warning
    if spec.weights and not spec.checkpoint:
        w = torchvision_weights(spec.arch, spec.weights)
        state = load_torchvision_weights(w, spec.arch)
        with _serve_state_dict(w, state) as served:
            model = torchvision.models.get_model(spec.arch, weights=w, **kwargs)
        if not served:
            raise RuntimeError(f"torchvision built {spec.arch} {w.name} without asking wordlens for its weights; "
                               "this torchvision version is not supported")
        return model
    return torchvision.models.get_model(spec.arch, weights=None, **kwargs)


_HASH_PREFIX = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's HASH_REGEX: <name>-<sha256 prefix>.<ext>
_SERVE_LOCK = threading.Lock()


def torchvision_weights_file(weights: Any) -> Path:
    """Where torch.hub keeps a torchvision weights entry: ``<torch.hub.get_dir()>/checkpoints/<file of its url>``
    (``$TORCH_HOME/hub/checkpoints/resnet50-0676ba61.pth``)."""
    from urllib.parse import urlparse

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def load_torchvision_weights(weights: Any, arch: str | None = None, *, download: bool = True) -> dict[str, torch.Tensor]:
    """The state dict of a torchvision weights entry, from torch.hub's cache, loaded safely.

    The file is :func:`torchvision_weights_file` (the one torchvision itself would use;
    offline users copy it there by hand).  Its SHA-256 must start with the hex prefix in
    its name (torchvision names files ``<name>-<first 8+ hex digits of sha256>.pth``),
    and it is loaded with ``torch.load(..., weights_only=True)``, so a file holding
    anything but tensors and plain containers is refused instead of run.

    Parameters
    ----------
    weights
        A torchvision weights entry (``ResNet50_Weights.IMAGENET1K_V1``), or its name
        when ``arch`` is given (``"IMAGENET1K_V1"``).
    arch
        The architecture (for messages, and to resolve a weights name).
    download
        When the file is missing, try torch.hub's download (hash-checked) first.

    Raises
    ------
    RuntimeError
        The file is missing (and could not be downloaded): the message names the path.
    ValueError
        Its hash does not match its name, or it does not load with ``weights_only=True``.
    """
    if isinstance(weights, str):
        if arch is None:
            raise ValueError("load_torchvision_weights: give arch with a weights name")
        weights = torchvision_weights(arch, weights)
    label = f"{arch + ' ' if arch else ''}{weights.name}"
    target = torchvision_weights_file(weights)
    if not target.is_file():
        problem = "downloading is switched off"
        if download:
            try:
                torch.hub.load_state_dict_from_url(weights.url, progress=True, check_hash=True, weights_only=True,
                                                   map_location="cpu")
            except Exception as err:  # noqa: BLE001 - any download failure gets the same advice
                problem = f"could not be downloaded ({type(err).__name__}: {err})"
        if not target.is_file():
            raise RuntimeError(
                f"pretrained weights {label} are not in {target} and {problem}. Download {weights.url} on a "
                f"machine with internet access and copy it to {target} (or point TORCH_HOME at a directory "
                "holding hub/checkpoints/)."
            )
    match = _HASH_PREFIX.search(target.name)
    if match and match.group(1):
        prefix = match.group(1)
        digest = wio.sha256_file(target)
        if not digest.startswith(prefix):
            raise ValueError(
                f"pretrained weights {label}: {target} has sha256 {digest}, but its name says the sha256 starts "
                f"with {prefix}: the file is corrupt or not the published one; delete it and download "
                f"{weights.url} again"
            )
    try:
        state = torch.load(target, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for refused or bad files
        raise ValueError(
            f"pretrained weights {label}: {target} could not be loaded as tensors only (weights_only=True), "
            f"so it was refused: {type(err).__name__}: {err}. Delete it and download {weights.url} again."
        ) from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"pretrained weights {label}: {target} does not hold a state dict (names to tensors)")
    return state


@contextlib.contextmanager
def _serve_state_dict(weights: Any, state: dict[str, torch.Tensor]):
    """While building a torchvision model, hand its builder ``state`` instead of torch.hub's load.

    Builders fetch weights with ``weights.get_state_dict(...)`` →
    ``torchvision.models._api.load_state_dict_from_url`` (torch.hub, ``weights_only=False``);
    the builder still applies its own configuration (class count, Inception's input
    transform, DenseNet's key renaming).  Yields a list that holds one entry per request.
    """
    from torchvision.models import _api

    served: list[str] = []

    def serve(url: str, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        if url != weights.url:
            raise RuntimeError(f"torchvision asked for {url} while building with {weights.url}")
        served.append(url)
        return state

    with _SERVE_LOCK:
        original = _api.load_state_dict_from_url
        _api.load_state_dict_from_url = serve
        try:
            yield served
        finally:
            _api.load_state_dict_from_url = original


def load_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a local file, loaded with ``weights_only=True`` (no arbitrary unpickling).

    Accepts a bare state dict or a dict holding one under ``state_dict`` / ``model``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise ValueError(
            f"checkpoint {path} could not be loaded as tensors only (weights_only=True): {err}. "
            "Save checkpoints with torch.save(model.state_dict(), path)."
        ) from err
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"checkpoint {path} does not hold a state dict (a mapping of names to tensors)")
    return obj


def state_dict_sha256(state: dict[str, torch.Tensor]) -> str:
    """Hex SHA-256 of a state dict's contents: every key (sorted), its dtype, shape and bytes.

    Unlike a hash of the file, it does not depend on how the tensors were saved
    (``torch.save`` stamps every file with a serialization id and its archive name),
    only on the weights themselves.
    """
    h = hashlib.sha256(b"wordlens-state-dict-v1\0")
    for key in sorted(state):
        t = state[key]
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"state dict entry {key!r} is a {type(t).__name__}, not a tensor")
        t = t.detach().to("cpu").contiguous()
        header = json.dumps([key, str(t.dtype), list(t.shape)], ensure_ascii=False)
        h.update(len(header).to_bytes(8, "little") + header.encode("utf-8"))
        data = t.reshape(-1).view(torch.uint8).numpy()  # the raw bytes, whatever the dtype (bfloat16, bool …)
        h.update(data.nbytes.to_bytes(8, "little"))
        h.update(memoryview(data))
    return h.hexdigest()


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """:func:`state_dict_sha256` of the state dict in a checkpoint file (read with :func:`load_checkpoint`).

    Two files saved from the same weights get the same hash; any changed tensor gives
    another.
    """
    return state_dict_sha256(load_checkpoint(path))


def build_model(spec: ModelSpec, device: str | torch.device = "cpu") -> nn.Module:
    """Build the model of ``spec`` in eval mode with frozen parameters on ``device``."""
    torch.manual_seed(spec.seed)
    model = _construct(spec)
    if spec.checkpoint:
        state = load_checkpoint(spec.checkpoint)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"checkpoint {spec.checkpoint} does not fit architecture {spec.arch!r}: "
                f"{len(missing)} missing key(s) (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
            )
    model.eval()
    model.requires_grad_(False)
    return model.to(device)


def model_from_config(name: str, cfg: dict[str, Any], device: str = "auto") -> tuple[nn.Module, Preprocessing, torch.device]:
    """The model of a workflow model config (eval mode, frozen), its preprocessing, and the
    resolved device (``auto``: CUDA when present)."""
    from wordlens.device import resolve_device

    spec = ModelSpec.from_config(name, dict(cfg))
    dev = resolve_device(device)
    return build_model(spec, dev), resolve_preprocessing(spec), dev
