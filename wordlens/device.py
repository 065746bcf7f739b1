"""Choosing the torch device and dtype for the numerics."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device spec into a :class:`torch.device`.

    Parameters
    ----------
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or a :class:`torch.device`.

    Raises
    ------
    ValueError
        If the spec is not understood, or CUDA is asked for but not available.
    """
    import torch

    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"device {device!r} is not valid: use 'auto', 'cpu', 'cuda' or 'cuda:N'"
            ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(dev)!r} was requested but CUDA is not available here; use 'auto' or 'cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {str(dev)!r} is not supported: use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return dev


def resolve_dtype(dtype: str | torch.dtype = "float64") -> torch.dtype:
    """Turn ``"float64"``/``"float32"`` (or a torch dtype) into a torch floating dtype."""
    import torch

    _DTYPES = {"float64": torch.float64, "float32": torch.float32}
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise ValueError(f"dtype {dtype} is not supported: use float64 or float32")
        return dtype
    try:
        return _DTYPES[str(dtype)]
    except KeyError:
        raise ValueError(f"dtype {dtype!r} is not supported: use one of {sorted(_DTYPES)}") from None
