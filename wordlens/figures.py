"""Figures: the papers' plots from the workflow's tidy tables (matplotlib; PDF and PNG)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wordlens import io as wio

log = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "font.size": 9, "axes.titlesize": 10,
                         "axes.spines.top": False, "axes.spines.right": False, "pdf.fonttype": 42,
                         "svg.fonttype": "none"})
    return plt


def save_figure(fig: Any, paths: Sequence[str | Path]) -> None:
    """Save a figure to each path (format from the suffix), atomically, then close it."""
    plt = _pyplot()
    for path in paths:
        suffix = Path(path).suffix
        with wio.atomic_path(path, suffix=suffix) as tmp:
            fig.savefig(tmp, format=suffix.lstrip("."), bbox_inches="tight")
    plt.close(fig)


def _to_display(img: np.ndarray) -> np.ndarray:
    """C × H × W in [0, 1] → H × W (grey) or H × W × 3."""
    img = np.clip(np.asarray(img, dtype=np.float32), 0, 1)
    return img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))


def adversarial_grid(clean: np.ndarray, adversarial: np.ndarray, attacks: pd.DataFrame, out: str | Path | Sequence,
                     n_sources: int = 5) -> None:
    """Sample adversarial images: one row per source (its clean image first), one column
    per target category, titled source → target with the model's confidence.

    ``clean`` and ``adversarial`` are N × C × H × W in [0, 1], aligned with ``attacks``
    rows (columns source, target, category, category_rank, success, pred_concept, pred_prob).
    """
    plt = _pyplot()
    outs = [out] if isinstance(out, (str, Path)) else list(out)
    sources = list(dict.fromkeys(attacks["source"]))[:max(1, n_sources)]
    cats = attacks.sort_values("category_rank")["category"].drop_duplicates().tolist()
    ncol = 1 + len(cats)
    nrow = max(1, len(sources))
    fig, axes = plt.subplots(nrow, ncol, figsize=(1.45 * ncol, 1.75 * nrow), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
    grey = dict(cmap="gray", vmin=0, vmax=1)
    for i, src in enumerate(sources):
        rows = attacks.index[attacks["source"] == src].tolist()
        if not rows:
            continue
        axes[i, 0].imshow(_to_display(clean[rows[0]]), **grey)
        axes[i, 0].set_title(f"{_short(src)}\n(clean)", fontsize=7)
        for r in rows:
            a = attacks.loc[r]
            j = 1 + cats.index(a["category"])
            ax = axes[i, j]
            ax.imshow(_to_display(adversarial[r]), **grey)
            ok = bool(a["success"])
            ax.set_title(f"→ {_short(a['target'])}\n{a['pred_prob']:.2f}" + ("" if ok else " ✗"), fontsize=7,
                         color="#1b7837" if ok else "#b2182b")
    for j, c in enumerate(cats):
        axes[-1, 1 + j].set_xlabel(c, fontsize=7)
    axes[-1, 0].set_xlabel("source", fontsize=7)
    fig.suptitle("Targeted MIM: source → target (model confidence; ✗ = target not reached)", fontsize=8)
    fig.tight_layout()
    save_figure(fig, outs)


def _short(name: str, width: int = 14) -> str:
    name = str(name)
    return name if len(name) <= width else name[: width - 1] + "…"
