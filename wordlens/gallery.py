"""Figures of the visualization branch: what layers and units respond to.

Feature maps (Réda & Xu, Figs. 3–4), attribution panels (DeconvNet, guided
backpropagation, Grad-CAM; misclassified, adversarial and fooled images), image grids
(activation maximization per class and start, or through training), a channel's top
dataset images beside its activation-maximization image (Dai, Figs. 4–5; one channel, or
one row per channel), where out-of-sample images and noise are classified beside the
final layer's bias (Dai §2.5, Table 1), how fast fooling flips the prediction per
learning rate, and a message figure for an output that has nothing to show.

Every function takes images as float arrays in pixel space [0, 1], shaped C × H × W
(C = 1 grey or 3 RGB; with a leading image axis where there are several), and writes the
figure to each path of ``out`` (one path or several; the format follows the suffix) with
:func:`wordlens.figures.save_figure`, atomically (a temporary file renamed when complete).
NaN and infinite pixel and map values are drawn as 0, never passed to matplotlib; NaN
scores print as "—" and are left out of histograms.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wordlens.figures import _pyplot, _to_display, save_figure

__all__ = ["feature_map_grid", "attribution_panel", "image_grid", "channel_examples", "channel_examples_grid",
           "prediction_heatmap", "fooling_curve", "message_figure"]

Out = str | Path | Sequence[str | Path]

_HEAT = "turbo"  # Grad-CAM style overlays
_ACT = "viridis"  # activation maps
_DIVERGING = "RdBu_r"  # signed maps (differences), centred on 0
_HIGHLIGHT = "#e66101"
_EMPHASIS = "#2166ac"


# --------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------


def _outs(out: Out) -> list[str | Path]:
    return [out] if isinstance(out, (str, Path)) else list(out)


def _finite(x: Any) -> np.ndarray:
    return np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def _bare(ax: Any) -> None:
    """No ticks, no frame (labels set with set_xlabel / set_ylabel still show)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)


def _show_image(ax: Any, img: np.ndarray) -> None:
    """A C × H × W image in [0, 1] (grey or RGB); grey on a fixed black-to-white scale
    (0 black, 1 white), never stretched to the image's range.  Small images (at most 64
    pixels a side: Fashion-MNIST, CIFAR) show their pixels as squares; larger ones, drawn
    smaller than their size, are anti-aliased (nearest-neighbour would alias fine detail)."""
    if np.ndim(img) != 3 or np.shape(img)[0] not in (1, 3):
        raise ValueError(f"an image must be C × H × W with C = 1 or 3, not shape {np.shape(img)}")
    small = max(np.shape(img)[1:]) <= 64
    ax.imshow(_to_display(_finite(img)), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest" if small else "antialiased")
    _bare(ax)


def _minmax(x: np.ndarray) -> np.ndarray:
    """(x − min) / (max − min); a constant array → zeros."""
    x = _finite(x)
    if not x.size:
        return x
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def _wrap(text: Any, width: int) -> str:
    return "\n".join(textwrap.wrap(str(text), width=max(4, width), break_long_words=True)) or str(text)


def _row_label(ax: Any, text: Any, width: int = 18, fontsize: float = 8) -> None:
    """A horizontal label left of an image (set as its y label, so layouts make room)."""
    ax.set_ylabel(_wrap(text, width), rotation=0, ha="right", va="center", fontsize=fontsize, labelpad=6)


def _name_of(names: Mapping | Sequence | None, key: Any, position: int | None = None) -> str:
    """Readable name of a class id: from a mapping (id → name), or a sequence aligned with
    the columns (``position``); the id itself otherwise."""
    if isinstance(names, Mapping):
        for k in (key, str(key)):
            if k in names:
                return str(names[k])
        if isinstance(key, (int, np.integer)) and str(int(key)) in names:
            return str(names[str(int(key))])
        return str(key)
    if names is not None and position is not None and not isinstance(names, str) and position < len(names):
        return str(names[position])
    return str(key)


def _fmt(v: float) -> str:
    return "—" if not np.isfinite(v) else f"{v:.3g}"


# --------------------------------------------------------------------------------------
# Feature maps (Réda & Xu, Figs. 3–4)
# --------------------------------------------------------------------------------------


def feature_map_grid(image: np.ndarray, maps: np.ndarray, channels: Sequence[int], out: Out, title: str = "",
                     shared_scale: bool = True, ncols: int | None = None) -> None:
    """The input image on the left, then a grid of the chosen channels' activation maps.

    Parameters
    ----------
    image : ndarray
        C × H × W in [0, 1].
    maps : ndarray
        K × h × w activation maps of the chosen channels (any resolution).
    channels : sequence of int
        The K channel numbers, shown above their maps.
    out : path or sequence of paths
        Where to write the figure (PNG, PDF, SVG, … by suffix).
    title : str
        Figure title (e.g. model and layer).
    shared_scale : bool
        True: one colour scale for all maps (they compare with each other), with its
        colour bar.  False: each map on its own min–max range, printed under it.  The colour
        bar's label says which.
    ncols : int, optional
        Maps per row; by default a grid about 1.5 times as wide as tall.

    Raises
    ------
    ValueError
        If ``maps`` is not K × h × w, holds no map, or K differs from the channel numbers.
    """
    plt = _pyplot()
    maps = _finite(maps)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"maps must be K × h × w, not shape {maps.shape}")
    channels = [int(c) for c in channels]
    if len(channels) != len(maps):
        raise ValueError(f"{len(channels)} channel numbers for {len(maps)} maps")
    k = len(maps)
    if k == 0:
        raise ValueError("feature_map_grid: no maps to show (no channel chosen)")
    ncols = int(ncols or min(k, int(np.ceil(np.sqrt(1.5 * k)))))
    nrows = int(np.ceil(k / ncols))
    cell = 1.05 if k <= 16 else (0.85 if k <= 48 else 0.7)
    img_cells = min(2, nrows) if nrows > 1 else 1.3
    per_map_range = not shared_scale
    row_h = cell + (0.3 if per_map_range else 0.17)  # a map, its title (and its range under it)
    fig = plt.figure(figsize=(cell * (img_cells + ncols) + 1.5, row_h * nrows + (0.45 if title else 0.2)),
                     layout="constrained")
    gs = fig.add_gridspec(1, 2, width_ratios=[img_cells, ncols], wspace=0.04)
    ax_img = fig.add_subplot(gs[0])
    _show_image(ax_img, image)
    ax_img.set_title("input", fontsize=9)
    grid = gs[1].subgridspec(nrows, ncols, wspace=0.05, hspace=0.1)
    lo, hi = float(maps.min()), float(maps.max())
    if hi <= lo:
        hi = lo + 1.0
    axes, im = [], None
    fs = 7 if cell > 0.8 else 6
    for i, (m, c) in enumerate(zip(maps, channels)):
        ax = fig.add_subplot(grid[i // ncols, i % ncols])
        axes.append(ax)
        if shared_scale:
            im = ax.imshow(m, cmap=_ACT, vmin=lo, vmax=hi, interpolation="nearest")
        else:
            im = ax.imshow(_minmax(m), cmap=_ACT, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xlabel(f"{m.min():.2g} … {m.max():.2g}", fontsize=fs - 0.5, labelpad=1, color="0.3")
        _bare(ax)
        ax.set_title(f"ch {c}", fontsize=fs, pad=2)
    for j in range(k, nrows * ncols):  # empty cells of the last row
        fig.add_subplot(grid[j // ncols, j % ncols]).axis("off")
    label = ("activation (one scale for all maps)" if shared_scale
             else "activation, each map on its own scale\n(0 = its min, 1 = its max; range under the map)")
    cb = fig.colorbar(im, ax=axes, shrink=min(1.0, 0.5 + 0.25 * nrows), aspect=max(10, 8 * nrows), pad=0.02)
    cb.set_label(label, fontsize=7)
    cb.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, _outs(out))


# --------------------------------------------------------------------------------------
# Attribution panels (DeconvNet, guided backprop, Grad-CAM; misclassified, adversarial, fooling)
# --------------------------------------------------------------------------------------


def attribution_panel(images: np.ndarray, maps: Mapping[str, np.ndarray], labels: Sequence[str], out: Out,
                      title: str = "", overlay: Sequence[str] = (), alpha: float = 0.5,
                      as_images: Sequence[str] = ()) -> None:
    """One row per image: the input, then one column per named map.

    Parameters
    ----------
    images : ndarray
        N × C × H × W inputs in [0, 1].
    maps : dict of str to ndarray
        Column title → maps of the N images, in column order.  N × h × w arrays are heat
        maps; N × C × H × W arrays are pixel-space projections (DeconvNet, guided
        backprop, an image such as the fooled one, a difference), shown normalised
        (x − min) / (max − min) per image.
    labels : sequence of str
        The N row labels (e.g. "true: sneaker · predicted: sandal").
    out : path or sequence of paths
        Where to write the figure.
    title : str
        Figure title.
    overlay : sequence of str
        Names of heat maps drawn over the input (Grad-CAM style: turbo colours, alpha
        blend), each normalised to [0, 1] per image.  Other heat maps are drawn on their own
        with one colour scale per column (centred on 0 when they take both signs).  Every
        heat-map column has a colour bar under it.
    alpha : float
        Opacity of the overlays.
    as_images : sequence of str
        Names of N × C × H × W maps that are images in [0, 1] themselves (e.g. the fooled
        or adversarial image): shown as they are, not normalised.

    Raises
    ------
    ValueError
        If there is no image, a map has another number of images, an overlay name is not a
        heat map of ``maps``, or the number of labels differs from the number of images.
    """
    plt = _pyplot()
    images = _finite(images)
    if images.ndim == 3:
        images = images[None]
    n = len(images)
    if n == 0:
        raise ValueError("attribution_panel: no images to show (message_figure says so instead)")
    names = list(maps)
    labels = [str(s) for s in labels]
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} images")
    arrays = {}
    for name in names:
        m = _finite(maps[name])
        if m.ndim not in (3, 4) or len(m) != n:
            raise ValueError(f"map {name!r}: expected {n} × h × w or {n} × C × H × W, got shape {m.shape}")
        arrays[name] = m
    bad = [o for o in overlay if o not in arrays or arrays[o].ndim != 3]
    if bad:
        raise ValueError(f"overlay {bad}: not heat maps (N × h × w) among {names}")
    bad = [o for o in as_images if o not in arrays or arrays[o].ndim != 4]
    if bad:
        raise ValueError(f"as_images {bad}: not N × C × H × W images among {names}")
    ncol = 1 + len(names)
    cell = 1.3 if ncol <= 6 else 1.05
    longest = max((len(s) for s in labels), default=0)
    label_w = 0.2 + min(longest, 18) * 0.055
    has_heat = any(m.ndim == 3 for m in arrays.values())
    fig, axes = plt.subplots(n, ncol, figsize=(cell * ncol + label_w, cell * n + 0.55 + (0.55 if has_heat else 0)),
                             squeeze=False, layout="constrained")
    h_img, w_img = images.shape[2:]
    extent = (-0.5, w_img - 0.5, h_img - 0.5, -0.5)
    for i in range(n):
        _show_image(axes[i, 0], images[i])
        _row_label(axes[i, 0], labels[i])
    axes[0, 0].set_title("input", fontsize=8)
    width_chars = int(cell * 13)
    pixel_names, overlaid = [], []
    for j, name in enumerate(names, start=1):
        m = arrays[name]
        column = axes[:, j]
        column[0].set_title(_wrap(name, width_chars), fontsize=8)
        if m.ndim == 4:
            if name not in as_images:
                pixel_names.append(name)
            for i in range(n):
                _show_image(column[i], m[i] if name in as_images else _minmax(m[i]))
            continue
        if name in overlay:
            overlaid.append(name)
            for i in range(n):
                _show_image(column[i], images[i])
                im = column[i].imshow(_minmax(m[i]), cmap=_HEAT, vmin=0, vmax=1, alpha=alpha, extent=extent,
                                      interpolation="bilinear")
            cb_label = "relative (per image)"
        else:
            lo, hi = float(m.min()), float(m.max())
            signed = lo < 0 < hi and min(-lo, hi) > 0.05 * max(-lo, hi)
            if signed:
                a = max(-lo, hi)
                kw = dict(cmap=_DIVERGING, vmin=-a, vmax=a)
            else:
                kw = dict(cmap="magma", vmin=lo, vmax=hi if hi > lo else lo + 1)
            for i in range(n):
                im = column[i].imshow(m[i], interpolation="nearest", **kw)
                _bare(column[i])
            cb_label = "value (one scale for the column)"
        cb = fig.colorbar(im, ax=list(column), location="bottom", shrink=0.85, aspect=12, pad=0.01)
        cb.ax.tick_params(labelsize=6)
        cb.set_label(cb_label, fontsize=6)
        cb.ax.xaxis.set_major_locator(plt.MaxNLocator(3))
    notes = []
    if pixel_names:
        which = ", ".join(pixel_names) if len(pixel_names) <= 3 else "pixel-space maps"
        notes.append(f"{which}: normalised per image, (x − min)/(max − min)")
    if overlaid:
        notes.append(f"heat maps over the input (α = {alpha:g}) scaled per image: 0 = the map's min, 1 = its max")
    if notes:
        fig.supxlabel(_wrap("; ".join(notes), int(17 * (cell * ncol + label_w))), fontsize=7, color="0.3")
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, _outs(out))


# --------------------------------------------------------------------------------------
# Image grids (activation maximization: classes × starts, or classes × epochs)
# --------------------------------------------------------------------------------------


def image_grid(images: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], out: Out, title: str = "",
               scores: np.ndarray | None = None, score_label: str = "", max_rows: int = 25) -> None:
    """A grid of images with row and column labels, optionally a score under each.

    Parameters
    ----------
    images : ndarray
        R × K × C × H × W in [0, 1] (e.g. classes × starts, or classes × epochs).
    row_labels, col_labels : sequence of str
        R row labels (e.g. class names) and K column labels (e.g. "noise start", "epoch 3").
    out : path or sequence of paths
        Where to write the figure.
    title : str
        Figure title.
    scores : ndarray, optional
        R × K numbers printed under the images (e.g. the activation-maximization objective,
        a similarity to the class's real images), all with the same number of decimals;
        NaN prints as "—".
    score_label : str
        What the numbers are; said once, under the grid.
    max_rows : int
        More rows than this (e.g. 100 classes) are split into side-by-side blocks of at
        most ``max_rows`` rows each, each with its own column labels, so the figure stays
        about as wide as tall.

    Raises
    ------
    ValueError
        If ``images`` is not R × K × C × H × W or is empty, or the labels or scores do not
        match R and K.
    """
    plt = _pyplot()
    images = _finite(images)
    if images.ndim != 5:
        raise ValueError(f"images must be R × K × C × H × W, not shape {images.shape}")
    r, k = images.shape[:2]
    if len(row_labels) != r or len(col_labels) != k:
        raise ValueError(f"{len(row_labels)} row labels and {len(col_labels)} column labels for a {r} × {k} grid")
    if r == 0 or k == 0:
        raise ValueError(f"image_grid: an empty {r} × {k} grid")
    fmt = "{:.3g}"
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (r, k):
            raise ValueError(f"scores must be {r} × {k}, not {scores.shape}")
        fmt = _decimals(scores)
    n_blocks = int(np.ceil(r / max_rows)) if r > max_rows else 1
    per_block = int(np.ceil(r / n_blocks))
    cell = float(np.clip(1.15 * 10 / max(per_block, 10), 0.68, 1.15))
    fs = 8 if cell >= 0.9 else 7
    score_h = 0.17 * fs / 8 if scores is not None else 0.0
    longest = max((len(str(s)) for s in row_labels), default=0)
    label_w = min(longest, 18) * fs / 72 * 0.58 + 0.15
    col_wrap = max(10, int(cell * 14))
    title_lines = max((len(textwrap.wrap(str(c), col_wrap)) for c in col_labels), default=1)
    block_w = cell * k + label_w + 0.1 * k
    block_h = (cell + score_h + 0.1) * per_block + title_lines * fs / 72 * 1.3 + 0.1
    fig = plt.figure(figsize=(block_w * n_blocks, block_h + (0.35 if title else 0) + (0.25 if score_label else 0)),
                     layout="constrained")
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.02)
    blocks = fig.subfigures(1, n_blocks, squeeze=False)[0] if n_blocks > 1 else [fig]
    for b, sub in enumerate(blocks):
        rows = range(b * per_block, min(r, (b + 1) * per_block))
        axes = sub.subplots(per_block, k, squeeze=False)
        for slot, ax in enumerate(axes[:, 0]):
            if slot >= len(rows):
                for empty in axes[slot]:
                    empty.axis("off")
        for slot, i in enumerate(rows):
            for j in range(k):
                ax = axes[slot, j]
                _show_image(ax, images[i, j])
                if scores is not None:
                    v = scores[i, j]
                    ax.set_xlabel(fmt.format(v) if np.isfinite(v) else "—", fontsize=fs - 1, labelpad=1)
            _row_label(axes[slot, 0], row_labels[i], fontsize=fs)
        for j in range(k):
            axes[0, j].set_title(_wrap(col_labels[j], col_wrap), fontsize=fs)
    if scores is not None and score_label:
        fig.supxlabel(f"under each image: {score_label}", fontsize=fs, color="0.3")
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, _outs(out))


def _decimals(values: np.ndarray, distinct: np.ndarray | None = None) -> str:
    """One format for all numbers of a figure: three significant digits of the largest,
    with up to two more decimals where needed to tell the ``distinct`` values apart."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(finite.max()) if finite.size else 1.0
    if top >= 1e4:
        return "{:.3g}"
    digits = 0 if top >= 100 else 1 if top >= 10 else 2 if top >= 1 or top == 0 else 3
    if distinct is not None:
        d = np.asarray(distinct, dtype=np.float64)
        d = d[np.isfinite(d)]
        n_unique = len(np.unique(d))
        for extra in range(3):
            if len({f"{v:.{digits + extra}f}" for v in d}) == n_unique:
                return "{:.%df}" % (digits + extra)
        return "{:.%df}" % (digits + 2)
    return "{:.%df}" % digits


# --------------------------------------------------------------------------------------
# A channel's top dataset images, its activation-maximization image, the score histogram
# --------------------------------------------------------------------------------------


def _score_text(v: float, fmt: str) -> str:
    return fmt.format(v) if np.isfinite(v) else "—"


def _am_cell(ax: Any, am_image: np.ndarray | None, fontsize: float = 7) -> None:
    """The activation-maximization image, or a framed placeholder saying there is none."""
    if am_image is not None:
        _show_image(ax, am_image)
        return
    _bare(ax)
    ax.set_aspect("equal")
    ax.text(0.5, 0.5, "no activation-\nmaximization\nimage", ha="center", va="center", fontsize=fontsize,
            color="0.4", transform=ax.transAxes)
    for side in ax.spines.values():
        side.set_visible(True)
        side.set_color("0.8")


def _score_histogram(ax: Any, all_scores: Any, top_scores: np.ndarray, bins: int,
                     fontsize: float = 7) -> tuple[int, int, float | None]:
    """Histogram of the finite scores of all images, the top scores as orange ticks at the
    bottom, and the range from the top-k threshold (the smallest top score) upwards shaded
    with the threshold as a dashed line.  Returns (finite scores drawn, non-finite scores
    left out, threshold or None)."""
    scores = np.asarray(all_scores, dtype=np.float64).ravel()
    finite = scores[np.isfinite(scores)]
    if finite.size:
        ax.hist(finite, bins=bins, color="0.65", edgecolor="white", linewidth=0.3)
    else:
        ax.text(0.5, 0.5, "no finite score", ha="center", va="center", fontsize=fontsize, color="0.4",
                transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    top = top_scores[np.isfinite(top_scores)]
    thr = None
    if top.size:
        thr = float(top.min())
        hi = max(float(top.max()), float(finite.max()) if finite.size else float(top.max()))
        ax.vlines(top, 0, 0.07, color=_HIGHLIGHT, lw=1.4, transform=ax.get_xaxis_transform(), zorder=3)
        ax.axvspan(thr, hi, color=_HIGHLIGHT, alpha=0.12, lw=0)
        ax.axvline(thr, color=_HIGHLIGHT, lw=0.9, ls="--", zorder=3)
    ax.tick_params(labelsize=fontsize - 1 if fontsize > 6 else fontsize)
    return int(finite.size), int(scores.size - finite.size), thr


def _top_set(top_images: Any, top_scores: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """k × C × H × W images (one C × H × W image → k = 1; an empty array → k = 0) and their
    k scores, checked."""
    images = _finite(top_images)
    if images.size == 0:
        images = images.reshape((0, 1, 1, 1)) if images.ndim != 4 else images
    elif images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{what}: top images must be k × C × H × W with C = 1 or 3, not shape {images.shape}")
    scores = np.asarray(top_scores, dtype=np.float64).ravel()
    if len(scores) != len(images):
        raise ValueError(f"{what}: {len(scores)} scores for {len(images)} top images")
    return images, scores


def channel_examples(top_images: np.ndarray, top_scores: Sequence[float], am_image: np.ndarray | None,
                     all_scores: Sequence[float], out: Out, title: str = "", score_name: str = "activation score",
                     bins: int = 40) -> None:
    """Dai, Figs. 4–5: a channel's top-k dataset images with their scores, its
    activation-maximization image, and the histogram of all images' scores.

    Parameters
    ----------
    top_images : ndarray
        k × C × H × W in [0, 1], best first.
    top_scores : sequence of float
        Their k scores (NaN prints as "—").
    am_image : ndarray or None
        C × H × W activation-maximization image of the channel (None: a placeholder says so).
    all_scores : sequence of float
        The scores of all dataset images (the histogram; NaN and infinite scores are left
        out of it and counted in its title); the top k are marked on it.
    out : path or sequence of paths
        Where to write the figure.
    title : str
        Figure title (e.g. model, layer, channel).
    score_name : str
        What the score is (the histogram's x label).
    bins : int
        Histogram bins.

    Raises
    ------
    ValueError
        If the top images are not k × C × H × W (C = 1 or 3) or the number of scores differs.
    """
    plt = _pyplot()
    top_images, top_scores = _top_set(top_images, top_scores, "channel_examples")
    k = len(top_images)
    fmt = _decimals(np.concatenate([top_scores, np.asarray(all_scores, dtype=np.float64).ravel()]), top_scores)
    ncol = k if k <= 5 else int(np.ceil(k / 2))
    nrow = int(np.ceil(k / ncol)) if k else 1
    cell = 0.95
    height = max(nrow * (cell + 0.28) + 0.7, 2.6)
    fig = plt.figure(figsize=(cell * max(ncol, 1) + 1.7 + 3.2, height), layout="constrained")
    left, middle, right = fig.subfigures(1, 3, width_ratios=[cell * max(ncol, 1) + 0.1, 1.6, 3.2], wspace=0.02)
    axes = left.subplots(nrow, max(ncol, 1), squeeze=False)
    for idx, ax in enumerate(axes.flat):
        if idx >= k:
            ax.axis("off")
            continue
        _show_image(ax, top_images[idx])
        ax.set_title(f"#{idx + 1}", fontsize=7, pad=2)
        ax.set_xlabel(_score_text(top_scores[idx], fmt), fontsize=7, labelpad=1)
    left.suptitle(f"top {k} dataset images\n(score under each)", fontsize=8)
    _am_cell(middle.subplots(), am_image)
    middle.suptitle("activation\nmaximization", fontsize=8)
    ax_h = right.subplots()
    n_finite, n_bad, thr = _score_histogram(ax_h, all_scores, top_scores, bins)
    if thr is not None:
        ax_h.plot([], [], color=_HIGHLIGHT, lw=1.4, label=f"top {k} (≥ {fmt.format(thr)})")
        ax_h.legend(frameon=False, fontsize=7, loc="best")
    ax_h.set_xlabel(score_name, fontsize=8)
    ax_h.set_ylabel("dataset images", fontsize=8)
    right.suptitle(f"scores of all {n_finite} dataset images" + (f"\n({n_bad} non-finite left out)" if n_bad else ""),
                   fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, _outs(out))


_PANEL_KEYS = ("channel", "top_images", "top_scores", "all_scores")


def channel_examples_grid(panels: Sequence[Mapping], out: Out, title: str = "", score_name: str = "activation score",
                          bins: int = 30) -> None:
    """Several channels as :func:`channel_examples`, one row each: the channel's
    activation-maximization image, its top-k dataset images (class above, score under,
    best first), and the histogram of all images' scores with the top-k threshold.

    Parameters
    ----------
    panels : sequence of dict
        One per channel (row), with keys ``channel`` (int), ``top_images`` (k × C × H × W
        in [0, 1]), ``top_scores`` (k floats; NaN prints as "—"), ``all_scores`` (the
        scores of all dataset images; NaN and infinite ones are left out of the histogram and
        counted in its title), and optionally ``am_image`` (C × H × W, or None: a
        placeholder says so) and ``top_labels`` (k strings, e.g. the images' classes).  The
        rows may have different k (fewer images than asked for) and grey or RGB images.
        No panel: a figure that says so.
    out : path or sequence of paths
        Where to write the figure.
    title : str
        Figure title (e.g. model and layer).
    score_name : str
        What the score is (said under the figure).
    bins : int
        Histogram bins.

    Raises
    ------
    ValueError
        If a panel lacks a key, its top images are not k × C × H × W (C = 1 or 3), or it has
        another number of scores or labels than images.
    """
    plt = _pyplot()
    if not panels:
        message_figure(out, (f"{title}\n\n" if title else "") + "no channel to show")
        return
    rows = []
    for i, p in enumerate(panels):
        missing = [key for key in _PANEL_KEYS if key not in p]
        if missing:
            raise ValueError(f"channel_examples_grid: panel {i} lacks {missing} (has {sorted(p)})")
        what = f"channel_examples_grid, channel {p['channel']}"
        images, scores = _top_set(p["top_images"], p["top_scores"], what)
        labels = p.get("top_labels")
        labels = [""] * len(images) if labels is None else [str(s) for s in labels]
        if len(labels) != len(images):
            raise ValueError(f"{what}: {len(labels)} labels for {len(images)} top images")
        am = p.get("am_image")
        if am is not None:
            am = _finite(am)
            if am.ndim != 3 or am.shape[0] not in (1, 3):
                raise ValueError(f"{what}: am_image must be C × H × W with C = 1 or 3, not shape {am.shape}")
        all_scores = np.asarray(p["all_scores"], dtype=np.float64).ravel()
        rows.append((int(p["channel"]), images, scores, am, all_scores, labels))
    n = len(rows)
    kcols = max(1, max(len(r[1]) for r in rows))  # image columns (cells a row does not fill stay empty)
    cell = 0.95 if n <= 8 else 0.8
    fs = 7 if cell > 0.9 else 6.5
    label_lines = 2 if any(len(s) > 13 for r in rows for s in r[5]) else 1
    row_h = cell + (label_lines + 1) * fs / 72 * 1.35 + 0.08  # title line(s), image, score under it
    hist_w = 2.4
    # AM image | gap | k top images | gap | histogram
    ratios = [cell, 0.12] + [cell] * kcols + [0.18, hist_w]
    fig = plt.figure(figsize=(sum(ratios) + 0.6, row_h * n + (0.45 if title else 0.1) + 0.3), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.03, wspace=0.01, hspace=0.02)
    gs = fig.add_gridspec(n, len(ratios), width_ratios=ratios)
    for i, (c, images, scores, am, all_scores, labels) in enumerate(rows):
        fmt = _decimals(np.concatenate([scores, all_scores]), scores)
        ax = fig.add_subplot(gs[i, 0])
        _am_cell(ax, am, fontsize=fs - 1)
        ax.set_title("activation max.", fontsize=fs, pad=2)
        _row_label(ax, f"ch {c}", fontsize=fs + 1)
        if len(images) == 0:
            ax = fig.add_subplot(gs[i, 2:2 + kcols])
            ax.axis("off")
            ax.text(0.5, 0.5, "no dataset image", ha="center", va="center", fontsize=fs, color="0.4",
                    transform=ax.transAxes)
        for j in range(len(images)):
            ax = fig.add_subplot(gs[i, 2 + j])
            _show_image(ax, images[j])
            if labels[j]:
                ax.set_title(_label_lines(labels[j], 13, label_lines), fontsize=fs - 0.5, pad=2)
            ax.set_xlabel(_score_text(scores[j], fmt), fontsize=fs, labelpad=1)
        ax_h = fig.add_subplot(gs[i, -1])
        n_finite, n_bad, thr = _score_histogram(ax_h, all_scores, scores, bins, fontsize=fs)
        head = f"{n_finite} finite of {n_finite + n_bad} images" if n_bad else f"all {n_finite} images"
        if thr is not None:
            head += f"; top {int(np.isfinite(scores).sum())} ≥ {fmt.format(thr)}"
        ax_h.set_title(head, fontsize=fs - 0.5, pad=2)
        if n_finite:
            ax_h.xaxis.set_major_locator(plt.MaxNLocator(4))
            ax_h.yaxis.set_major_locator(plt.MaxNLocator(3, integer=True))
    fig.supxlabel(f"top dataset images best first (class above, {score_name} under); histogram: {score_name} of all "
                  "images, the top ones shaded from the dashed threshold", fontsize=fs, color="0.3")
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, _outs(out))


def _label_lines(text: str, width: int, lines: int) -> str:
    """``text`` wrapped to at most ``lines`` lines of ``width`` characters, the last cut with "…"."""
    parts = textwrap.wrap(str(text), width=width, break_long_words=True) or [""]
    if len(parts) > lines:
        parts = parts[:lines]
        parts[-1] = parts[-1][: width - 1] + "…"
    return "\n".join(parts)


# --------------------------------------------------------------------------------------
# A message instead of a figure
# --------------------------------------------------------------------------------------


def message_figure(out: Out, message: str) -> None:
    """A small figure with ``message`` centred in a light frame, for an output that has
    nothing to show (e.g. "no misclassified image"); long lines are wrapped."""
    plt = _pyplot()
    lines = [_wrap(line, 72) if line.strip() else "" for line in str(message).splitlines()] or ["(no message)"]
    text = "\n".join(lines).strip("\n") or "(no message)"
    n_lines = text.count("\n") + 1
    fig = plt.figure(figsize=(6.0, 0.7 + 0.2 * n_lines))
    ax = fig.add_axes((0.005, 0.01, 0.99, 0.98))
    _bare(ax)
    for side in ax.spines.values():
        side.set_visible(True)
        side.set_color("0.8")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, color="0.25", transform=ax.transAxes,
            linespacing=1.4)
    save_figure(fig, _outs(out))


# --------------------------------------------------------------------------------------
# Out-of-sample prediction (Dai §2.5, Table 1)
# --------------------------------------------------------------------------------------


def prediction_heatmap(freq: pd.DataFrame, bias: Sequence[float] | pd.Series | None,
                       class_names: Mapping[Any, str] | Sequence[str] | None, out: Out, title: str = "") -> None:
    """Which classes out-of-sample images and noise are predicted as, beside the final
    layer's bias per class.

    Parameters
    ----------
    freq : DataFrame
        Rows: image sets and "noise" (index labels; class ids are shown by name);
        columns: class ids; values: fraction of the row's images predicted as the class (rows
        sum to 1).  Drawn as a heat map, with the percentages written in the cells when there
        are at most 20 columns; each row's most predicted class is outlined.
    bias : sequence of float, Series or None
        The final layer's bias per class: a Series indexed by class id (reordered to the
        columns) or values in the column order.  Drawn as a bar chart under the heat map with
        the same columns; the largest bias and the class noise goes to most are coloured.
        None: no bar chart (the model's last linear layer has no bias).
    class_names : mapping or sequence of str, optional
        Class id → readable name, or names in the column order.
    out : path or sequence of paths
        Where to write the figure.
    title : str
        Figure title.
    """
    plt = _pyplot()
    from matplotlib.patches import Patch, Rectangle

    cols, rows = list(freq.columns), list(freq.index)
    nc, nr = len(cols), len(rows)
    if nc == 0 or nr == 0:
        raise ValueError("freq has no rows or no columns")
    values = np.clip(_finite(freq.to_numpy(dtype=np.float64)), 0, 1)
    col_names = [_name_of(class_names, c, i) for i, c in enumerate(cols)]
    row_names = [str(r) if str(r).lower() == "noise" else _name_of(class_names if isinstance(class_names, Mapping)
                                                                    else None, r) for r in rows]
    b = None
    if bias is not None:
        if isinstance(bias, pd.Series) and set(cols) <= set(bias.index):
            b = _finite(bias.reindex(cols).to_numpy(dtype=np.float64))
        else:
            b = _finite(np.asarray(bias, dtype=np.float64).ravel())
        if len(b) != nc:
            raise ValueError(f"{len(b)} bias values for {nc} classes")
    cw = 0.55 if nc <= 12 else max(0.115, 6.6 / nc)
    rh = 0.32 if nr <= 15 else max(0.13, 4.8 / nr)
    tick_fs = 8 if nc <= 20 else (6.5 if nc <= 50 else 5.5)
    row_fs = 8 if nr <= 20 else (6.5 if nr <= 50 else 5.5)
    longest_col = max(len(s) for s in col_names)
    label_h = min(longest_col, 24) * tick_fs / 72 * 0.6 * (0.75 if nc <= 20 else 1.0)
    heat_h = rh * nr
    bar_h = 1.5 if b is not None else 0.0
    width = float(np.clip(cw * nc + 2.2, 5.0, 18.0))
    fig = plt.figure(figsize=(width, heat_h + bar_h + 2 * label_h + 1.0), layout="constrained")
    gs = fig.add_gridspec(2 if b is not None else 1, 2, width_ratios=[max(cw * nc, 1.0), 0.18],
                          height_ratios=[heat_h, bar_h] if b is not None else [1])
    ax = fig.add_subplot(gs[0, 0])
    cax = fig.add_subplot(gs[0, 1])
    vmax = 1.0 if values.max() > 0.5 else max(0.1, float(np.ceil(values.max() * 10) / 10))  # pale data, a visible scale
    im = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xlim(-0.5, nc - 0.5)
    ax.set_yticks(range(nr))
    ax.set_yticklabels(row_names, fontsize=row_fs)
    for lbl, r in zip(ax.get_yticklabels(), rows):
        if str(r).lower() == "noise":
            lbl.set_fontweight("bold")
    ax.tick_params(axis="y", length=0)
    ax.xaxis.tick_top()
    ax.set_xticks(range(nc))
    fits = longest_col * tick_fs * 0.55 / 72 <= cw * 0.95
    rotate = 0 if fits else (45 if nc <= 20 else 90)
    _tick_labels(ax, col_names, tick_fs, rotate, top=True)
    ax.tick_params(axis="x", length=0)
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("predicted class", fontsize=8)
    ax.set_ylabel("images shown", fontsize=8)
    for side in ax.spines.values():
        side.set_visible(False)
    if nc <= 20:
        for i in range(nr):
            for j in range(nc):
                v = values[i, j]
                if v <= 0:
                    continue
                text = "<1" if v < 0.005 else f"{100 * v:.0f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7 if nc <= 12 else 6,
                        color="white" if v > 0.55 * vmax else "0.15")
    top = values.argmax(axis=1)
    for i, j in enumerate(top):
        if values[i, j] > 0:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec=_HIGHLIGHT, lw=1.6 if nc <= 50 else 1.0,
                                   zorder=3))
    noise = [i for i, r in enumerate(rows) if str(r).lower() == "noise"]
    if noise and noise[0] > 0:
        ax.axhline(noise[0] - 0.5, color="white", lw=2.5)
    cb = fig.colorbar(im, cax=cax)
    cb.set_label("% of the row's images\npredicted as the class", fontsize=7)
    ticks = [t for t in plt.MaxNLocator(5).tick_values(0, vmax) if -1e-9 <= t <= vmax + 1e-9]
    cb.set_ticks(ticks, labels=[f"{100 * t:.0f}" for t in ticks])
    cb.ax.tick_params(labelsize=7)
    if b is not None:
        bx = fig.add_subplot(gs[1, 0], sharex=ax)
        fig.add_subplot(gs[1, 1]).axis("off")
        colours = np.array(["0.7"] * nc, dtype=object)
        largest = int(np.argmax(b))
        colours[largest] = _EMPHASIS
        noise_top = int(top[noise[0]]) if noise and values[noise[0]].max() > 0 else None
        edges = ["none"] * nc
        if noise_top is not None:
            edges[noise_top] = _HIGHLIGHT
            if noise_top != largest:
                colours[noise_top] = "#fdb863"
        bx.bar(range(nc), b, width=0.8, color=list(colours), edgecolor=edges, linewidth=1.6 if nc <= 50 else 0.8)
        bx.axhline(0, color="0.3", lw=0.7)
        bx.set_ylabel("final-layer bias", fontsize=8)
        bx.tick_params(axis="y", labelsize=7)
        bx.set_xticks(range(nc))
        _tick_labels(bx, col_names, tick_fs, rotate, top=False)
        bx.tick_params(axis="x", length=0, labeltop=False)
        ax.tick_params(axis="x", labelbottom=False)
        handles = [Patch(color=_EMPHASIS, label=f"largest bias: {col_names[largest]}")]
        if noise_top is not None:
            handles.append(Patch(facecolor=_EMPHASIS if noise_top == largest else "#fdb863", edgecolor=_HIGHLIGHT,
                                 lw=1.6, label=f"noise goes to most: {col_names[noise_top]}"))
        bx.legend(handles=handles, frameon=False, fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2,
                  borderaxespad=0.1)
    fig.suptitle(title or "Where out-of-sample images and noise are classified (outlined: each row's most "
                          "predicted class)", fontsize=10)
    save_figure(fig, _outs(out))


def _tick_labels(ax: Any, names: Sequence[str], fontsize: float, rotation: float, top: bool) -> None:
    """Class names as x tick labels: level, slanted (anchored at the tick, parallel above
    and below), or vertical."""
    if rotation in (0, 90):
        ax.set_xticklabels(names, fontsize=fontsize, rotation=rotation, ha="center")
        return
    ax.set_xticklabels(names, fontsize=fontsize, rotation=rotation, ha="left" if top else "right",
                       va="bottom" if top else "top", rotation_mode="anchor")


# --------------------------------------------------------------------------------------
# Fooling: how fast the prediction flips, per learning rate
# --------------------------------------------------------------------------------------


def fooling_curve(frame: pd.DataFrame, out: Out, title: str = "") -> None:
    """Step at which fooling flips each image's prediction to the target, per learning rate.

    Parameters
    ----------
    frame : DataFrame
        Columns image, lr, flip_step, steps, target_confidence; one row per image and
        learning rate.  flip_step −1: never flipped within ``steps``.
    out : path or sequence of paths
        Where to write the figure.
    title : str
        Figure title.

    Notes
    -----
    Flipped images are a box plot with the images as points over it, coloured by their
    target confidence; never-flipped images are crosses above the step budget, counted
    under each learning rate.  The step axis is logarithmic when the flip steps span
    more than 30× (symlog, linear below 1, where a flip at step 0 occurs).
    """
    plt = _pyplot()
    need = {"image", "lr", "flip_step", "steps", "target_confidence"}
    missing = need - set(frame.columns)
    if missing:
        raise ValueError(f"fooling table lacks columns {sorted(missing)}")
    f = frame.copy()
    f["flip_step"] = pd.to_numeric(f["flip_step"], errors="coerce").fillna(-1)
    conf = np.clip(_finite(f["target_confidence"].to_numpy(dtype=np.float64)), 0, 1)
    f["target_confidence"] = conf
    lrs = sorted(f["lr"].unique())
    steps_max = float(np.nanmax(_finite(f["steps"].to_numpy(dtype=np.float64)))) if len(f) else 1.0
    flipped_all = f.loc[f["flip_step"] >= 0, "flip_step"].to_numpy(dtype=np.float64)
    positive = flipped_all[flipped_all > 0]
    log = positive.size > 0 and max(steps_max, positive.max()) / max(positive.min(), 1.0) > 30
    never_y = steps_max * (1.6 if log else 1.08) if steps_max > 0 else 1.0
    fig, ax = plt.subplots(figsize=(max(3.8, 1.15 * len(lrs) + 2.2), 3.8), layout="constrained")
    rng = np.random.default_rng(0)
    sc = None
    ticks = []
    for i, lr in enumerate(lrs):
        s = f[f["lr"] == lr]
        ok = s["flip_step"] >= 0
        y = s.loc[ok, "flip_step"].to_numpy(dtype=np.float64)
        if y.size:
            ax.boxplot([y], positions=[i], widths=0.5, showfliers=False, patch_artist=True,
                       boxprops=dict(facecolor="0.92", edgecolor="0.5"), medianprops=dict(color="0.2", lw=1.4),
                       whiskerprops=dict(color="0.5"), capprops=dict(color="0.5"))
            sc = ax.scatter(i + rng.uniform(-0.16, 0.16, y.size), y, c=s.loc[ok, "target_confidence"], cmap="viridis",
                            vmin=0, vmax=1, s=20, edgecolors="0.2", linewidths=0.4, zorder=3)
        nn = int((~ok).sum())
        if nn:
            sc = ax.scatter(i + rng.uniform(-0.16, 0.16, nn), np.full(nn, never_y),
                            c=s.loc[~ok, "target_confidence"], cmap="viridis", vmin=0, vmax=1, marker="X", s=34,
                            edgecolors="0.2", linewidths=0.4, zorder=3)
        budget = float(s["steps"].max())
        ax.hlines(budget, i - 0.4, i + 0.4, color="0.4", ls="--", lw=0.9)
        ticks.append(f"{lr:g}\n{nn}/{len(s)} never")
    ax.set_xticks(range(len(lrs)))
    ax.set_xticklabels(ticks, fontsize=8)
    ax.set_xlim(-0.6, len(lrs) - 0.4)
    if log and (flipped_all == 0).any():
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(-0.25, never_y * 1.5)  # step-0 points whole, not cut by the axis
    elif log:
        ax.set_yscale("log")
        ax.set_ylim(positive.min() / 1.6, never_y * 1.5)
    else:
        ax.set_ylim(-0.03 * never_y, never_y * 1.06)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.4", ls="--", lw=0.9, label="step budget"),
               Line2D([], [], ls="", marker="X", mfc="0.6", mec="0.2", mew=0.4, ms=6,
                      label="never flipped (drawn above the budget)")]
    ax.legend(handles=handles, frameon=False, fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2,
              borderaxespad=0.2)
    ax.set_xlabel("learning rate", fontsize=8)
    ax.set_ylabel("step at which the prediction flips to the target", fontsize=8)
    if sc is not None:
        cb = fig.colorbar(sc, ax=ax, pad=0.02, shrink=0.85)
        cb.set_label("target confidence", fontsize=7)
        cb.ax.tick_params(labelsize=7)
    n_images = f["image"].nunique()
    fig.suptitle(title or f"Fooling: steps until the prediction flips ({n_images} images)", fontsize=10)
    save_figure(fig, _outs(out))
