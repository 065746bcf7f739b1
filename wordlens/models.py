"""Models: torchvision classifiers by name, our own architectures, local checkpoints,
and the preprocessing that goes with each."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

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

    def describe(self) -> dict[str, Any]:
        """Plain description (recorded in HDF5 attributes and tables)."""
        d = asdict(self)
        d["preprocessing_resolved"] = resolve_preprocessing(self).to_dict()
        return d


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
        _ensure_weights_available(spec.arch, w)
        return torchvision.models.get_model(spec.arch, weights=w, **kwargs)
    return torchvision.models.get_model(spec.arch, weights=None, **kwargs)


def _ensure_weights_available(arch: str, weights: Any) -> None:
    """Download pretrained weights (only when a config asks for them), with a clear error offline."""
    from torch.hub import get_dir, load_state_dict_from_url

    url = weights.url
    target = Path(get_dir()) / "checkpoints" / os.path.basename(url)
    if target.exists():
        return
    try:
        load_state_dict_from_url(url, progress=True, check_hash=True)
    except Exception as err:  # noqa: BLE001 - any download failure gets the same advice
        raise RuntimeError(
            f"pretrained weights {arch} {weights.name} are not in {target} and could not be downloaded "
            f"({type(err).__name__}: {err}). Download {url} on a machine with internet access and copy it "
            f"to {target} (or point TORCH_HOME at a directory holding hub/checkpoints/)."
        ) from err


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


def checkpoint_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata written beside a checkpoint (``<checkpoint>.json``), or {}."""
    meta = Path(str(path) + ".json")
    return json.loads(meta.read_text()) if meta.is_file() else {}


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
