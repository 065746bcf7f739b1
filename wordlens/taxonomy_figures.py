"""Figures of the category-clustering branch (Dai, "What do CNN neurons learn", §3, Figs. 8–10).

* :func:`dendrogram_figure` — a layer's hierarchy over categories (scipy linkage matrix,
  WPGMA), horizontal: root on the left, concept names on the right.  Up to
  ``max_leaves`` concepts fit one page with every name.  Above that it **paginates**:
  the tree is cut into its largest subtrees of at most ``max_leaves`` concepts (each
  labelled A, B, C, …); page 1 is the overview, the tree above those subtrees with one
  leaf per subtree labelled with its letter, its number of concepts, the page it is
  drawn on and its first members (a single concept keeps its name); the following
  pages draw the subtrees whole, every name shown, packed in overview order (top to
  bottom) onto pages of at most ``max_leaves`` names, all on one distance scale.  Every
  concept name thus appears exactly once, on the overview or on a subtree page, always
  at a readable size (7–10 pt).  A strongly chained tree (single concepts joining one
  by one at the top) can give an overview of more than ``max_leaves`` rows: it is still
  drawn on one page, its font scaled down to 7 pt.
* :func:`mst_figure` — the minimum spanning tree of the category distances, laid out by
  Graphviz's ``neato`` with each edge's length proportional to its weight; weights
  printed on the edges up to :data:`MST_EDGE_LABELS_MAX` concepts, above that shown
  by colour and width only (with a colour key); a "noise" category highlighted.
* :func:`umap_figure` — two maps side by side (Dai, Fig. 9): the images coloured by
  concept, and the concepts' representative vectors, labelled.
* :func:`agreement_curve` — per layer (graph order), how well the layer's hierarchy
  agrees with a reference hierarchy (word space, WordNet): one line per (reference,
  statistic), filled markers significant after BHY, the cophenetic null level 0 dashed — drawn
  with the 2 vs. 2 figure's helpers (:mod:`wordlens.figures`).
* :func:`prediction_tree_figure` — Dai's Algorithm 2 filter prediction tree via
  Graphviz: each merge labelled with its critical filter and its number of reachable
  filters, leaves the category's images (optionally as thumbnails).

Every file is written atomically (a temporary name, renamed when complete): matplotlib
figures through :func:`wordlens.figures.save_figure`, Graphviz ones through
:func:`wordlens.diagrams.render`.  Inputs that do not fit (names whose number differs
from the tree's leaves, empty inputs, malformed linkage or edge lists) raise
``ValueError`` naming the argument.
"""

from __future__ import annotations

import base64
import contextlib
import html
import logging
import re
import string
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wordlens import io as wio
from wordlens.diagrams import _hex, _text_colour, render
from wordlens.figures import _colours, _layer_axis, _marker_legend, _pyplot, _series, _width, save_figure

log = logging.getLogger(__name__)

__all__ = ["dendrogram_figure", "dendrogram_pages", "mst_dot", "mst_figure", "umap_figure", "agreement_curve",
           "prediction_tree_dot", "prediction_tree_figure", "MST_EDGE_LABELS_MAX", "LEGEND_MAX"]

Out = str | Path | Sequence[str | Path]

MST_EDGE_LABELS_MAX = 30  # concepts up to which the MST prints each edge's weight
LEGEND_MAX = 20  # concepts up to which the UMAP figure has a legend (and labels every concept)
_ANNOTATE_MAX = 30  # above: label this many concepts, spread over the map
_NOISE = "#e66101"
_LINK = "0.25"
_GRAPHVIZ_PNG_MAX_PX = 9000  # a PNG preview's longest side; the SVG carries full detail


def _outs(out: Out) -> list[Path]:
    return [Path(out)] if isinstance(out, (str, Path)) else [Path(p) for p in out]


def _graphviz_outs(out: Out) -> list[Path]:
    """A single path → its .svg and .png (and the path itself if it is neither, e.g. .pdf);
    a sequence → exactly those paths."""
    if not isinstance(out, (str, Path)):
        outs = [Path(p) for p in out]
        if not outs:
            raise ValueError("out is empty: no path to write")
        return outs
    p = Path(out)
    outs = [p.with_suffix(".svg"), p.with_suffix(".png")]
    return outs + ([p] if p.suffix not in (".svg", ".png") and p.suffix else [])


def _clip(name: str, width: int = 48) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


# --------------------------------------------------------------------------------------
# Dendrogram (Dai, Fig. 8, right)
# --------------------------------------------------------------------------------------


def _check_linkage(Z: Any) -> np.ndarray:
    from scipy.cluster.hierarchy import is_valid_linkage

    try:
        Z = np.asarray(Z, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Z must be a numeric scipy linkage matrix: {e}") from None
    if Z.ndim != 2 or Z.shape[1] != 4:
        raise ValueError(f"Z must be a scipy linkage matrix of shape (n − 1) × 4, not {Z.shape}")
    if Z.shape[0] == 0:
        raise ValueError("Z is empty: a hierarchy needs at least 2 concepts")
    try:
        is_valid_linkage(Z, throw=True, name="Z")
    except (TypeError, ValueError) as e:
        raise ValueError(f"Z is not a valid linkage matrix: {e}") from None
    return Z


def _check_names(names: Any, n: int, against: str, unit: str) -> list[str]:
    if names is None or isinstance(names, str):
        raise ValueError(f"names must be a sequence of {n} concept names, not {type(names).__name__}")
    names = [str(x) for x in names]
    if not names:
        raise ValueError("names is empty")
    if len(names) != n:
        raise ValueError(f"names has {len(names)} entries but {against} has {n} {unit}")
    return names


def _code(k: int) -> str:
    """0 → A, 25 → Z, 26 → AA, …"""
    letters = string.ascii_uppercase
    s = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        s = letters[r] + s
    return s


def _counts(Z: np.ndarray) -> np.ndarray:
    n = Z.shape[0] + 1
    return np.concatenate([np.ones(n), Z[:, 3]])


def _children(Z: np.ndarray, node: int) -> tuple[int, int]:
    n = Z.shape[0] + 1
    return int(Z[node - n, 0]), int(Z[node - n, 1])


def _groups(Z: np.ndarray, max_leaves: int) -> list[int]:
    """The largest subtrees with at most ``max_leaves`` leaves (node ids, scipy numbering),
    in the dendrogram's leaf order."""
    n = Z.shape[0] + 1
    counts = _counts(Z)
    out, stack = [], [2 * n - 2]
    while stack:
        node = stack.pop()
        if counts[node] <= max_leaves:
            out.append(node)
        else:
            left, right = _children(Z, node)
            stack.extend([right, left])  # left first
    return out


def _leaves_under(Z: np.ndarray, node: int) -> list[int]:
    n = Z.shape[0] + 1
    out, stack = [], [node]
    while stack:
        x = stack.pop()
        if x < n:
            out.append(x)
        else:
            left, right = _children(Z, x)
            stack.extend([right, left])
    return out


def _relabel(Z: np.ndarray, top: int, stops: Sequence[int]) -> np.ndarray:
    """The linkage of the tree below ``top`` whose leaves are ``stops`` (subtrees taken
    as leaves, numbered 0… in the order given); merge heights kept."""
    n = Z.shape[0] + 1
    new = {s: k for k, s in enumerate(stops)}
    stopset = set(stops)
    internal, stack = [], [top]
    while stack:
        x = stack.pop()
        if x in stopset:
            continue
        internal.append(x)
        stack.extend(_children(Z, x))
    rows = []
    size = {k: 1 for k in range(len(stops))}
    for x in sorted(internal):  # merge order: children before parents
        a, b = (new[c] for c in _children(Z, x))
        new[x] = len(stops) + len(rows)
        size[new[x]] = size[a] + size[b]
        rows.append([a, b, Z[x - n, 2], size[new[x]]])
    return np.asarray(rows, dtype=np.float64)


def dendrogram_pages(Z: np.ndarray, names: Sequence[str], max_leaves: int = 60) -> list[dict[str, Any]]:
    """How :func:`dendrogram_figure` lays the tree out on pages.

    Returns
    -------
    list of dict
        One per page: ``kind`` (``"full"``: the whole tree on one page; ``"overview"``;
        ``"subtrees"``), ``names`` (the concept names the page shows, top to bottom) and,
        for the overview and subtree pages, ``groups`` (the subtrees' letters; on the
        overview, ``None`` for a single concept drawn by name).
    """
    Z = _check_linkage(Z)
    n = Z.shape[0] + 1
    names = _check_names(names, n, "Z", "leaves")
    if int(max_leaves) < 2:
        raise ValueError(f"max_leaves must be at least 2, not {max_leaves}")
    return [{k: v for k, v in p.items() if not k.startswith("_")} for p in _layout(Z, names, int(max_leaves))]


def _layout(Z: np.ndarray, names: list[str], max_leaves: int) -> list[dict[str, Any]]:
    from scipy.cluster.hierarchy import leaves_list

    n = Z.shape[0] + 1
    if n <= max_leaves:
        return [{"kind": "full", "names": [names[i] for i in leaves_list(Z)], "_Z": Z, "_labels": names}]
    groups = _groups(Z, max_leaves)
    counts = _counts(Z)
    packed: list[list[int]] = []  # subtrees (≥ 2 concepts) packed onto pages 2…, in overview order
    size = 0
    for g in groups:
        if g < n:
            continue
        if not packed or size + counts[g] > max_leaves:
            packed.append([])
            size = 0
        packed[-1].append(g)
        size += int(counts[g])
    page_of = {g: k + 2 for k, p in enumerate(packed) for g in p}
    codes = {g: _code(k) for k, g in enumerate(g for g in groups if g >= n)}
    labels = []
    for g in groups:
        if g < n:
            labels.append(names[g])
        else:
            members = [names[i] for i in _leaves_under(Z, g)]
            head = ", ".join(_clip(m, 18) for m in members[:3]) + (", …" if len(members) > 3 else "")
            labels.append(f"{codes[g]} · {len(members)} concepts (p. {page_of[g]}): {head}")
    out = [{"kind": "overview", "names": [names[g] for g in groups if g < n],
            "groups": [codes.get(g) for g in groups], "_Z": _relabel(Z, 2 * n - 2, groups), "_labels": labels}]
    for p in packed:
        out.append({"kind": "subtrees", "groups": [codes[g] for g in p],
                    "names": [names[i] for g in p for i in _leaves_under(Z, g)],
                    "_parts": [(codes[g], _relabel(Z, g, _leaves_under(Z, g)),
                                [names[i] for i in _leaves_under(Z, g)]) for g in p]})
    return out


def _font(rows: int) -> float:
    return float(np.clip(10.5 - rows / 12.0, 7.0, 10.0))


def _draw_dendrogram(ax: Any, Z: np.ndarray, labels: Sequence[str], fontsize: float, xmax: float) -> None:
    from scipy.cluster.hierarchy import dendrogram

    dendrogram(Z, labels=[_clip(s, 64) for s in labels], orientation="left", ax=ax, leaf_font_size=fontsize,
               link_color_func=lambda _k: _LINK)
    ax.invert_yaxis()  # first leaf at the top, as pages are read
    ax.set_xlim(xmax * 1.03 if xmax > 0 else 1.0, 0)
    ax.tick_params(axis="y", length=0, pad=2)
    ax.tick_params(axis="x", labelsize=7)
    for side in ("left", "top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x", color="0.9", lw=0.6)
    ax.set_axisbelow(True)


def dendrogram_figure(Z: np.ndarray, names: Sequence[str], out: Out, title: str = "", max_leaves: int = 60,
                      xlabel: str = "merge distance ½(1 − cos)") -> list[Path]:
    """Draw a hierarchy over concepts (a scipy linkage matrix, e.g. WPGMA) horizontally.

    Parameters
    ----------
    Z : array, (n − 1) × 4
        scipy linkage matrix over the n concepts.
    names : sequence of str
        The n concept names, in Z's leaf order (leaf i is names[i]).
    out : path or sequence of paths
        Where to write (format from the suffix).  A PDF holds every page; a PNG or SVG
        path receives page 1 and pages k ≥ 2 go beside it as ``<stem>.page<k><suffix>``
        (stale pages from an earlier, longer run are removed).
    title : str
        Figure title (page k of a paginated figure says so).
    max_leaves : int
        Most concept names on one page; above, the figure paginates (module docstring).
    xlabel : str
        Label of the distance axis.

    Returns
    -------
    list of Path
        Every file written.
    """
    from matplotlib.backends.backend_pdf import PdfPages

    plt = _pyplot()
    Z = _check_linkage(Z)
    n = Z.shape[0] + 1
    names = _check_names(names, n, "Z", "leaves")
    if int(max_leaves) < 2:
        raise ValueError(f"max_leaves must be at least 2, not {max_leaves}")
    outs = _outs(out)
    if not outs:
        raise ValueError("out is empty: no path to write")
    pages = _layout(Z, names, int(max_leaves))
    sub_max = max((float(Zs[:, 2].max()) for p in pages[1:] for _c, Zs, _l in p["_parts"]), default=0.0)
    written: list[Path] = []
    pdfs = [p for p in outs if p.suffix.lower() == ".pdf"]
    others = [p for p in outs if p.suffix.lower() != ".pdf"]
    with contextlib.ExitStack() as stack:
        books = [PdfPages(stack.enter_context(wio.atomic_path(p, suffix=".pdf"))) for p in pdfs]
        for book in books:
            stack.callback(book.close)
        for k, page in enumerate(pages, start=1):
            suffix = f" — page {k} of {len(pages)}" if len(pages) > 1 else ""
            if page["kind"] in ("full", "overview"):
                rows = len(page["_labels"])
                fs = _font(rows)
                fig, ax = plt.subplots(figsize=(7.0, 0.9 + rows * fs * 1.75 / 72))
                _draw_dendrogram(ax, page["_Z"], page["_labels"], fs, float(Z[:, 2].max()))
                ax.set_xlabel(xlabel, fontsize=8)
                head = title or f"Hierarchy of {n} concepts"
                if page["kind"] == "overview":
                    n_groups = sum(g is not None for g in page["groups"])
                    head += (f"{suffix}\noverview: subtrees A–{_code(n_groups - 1)} of at most {max_leaves} "
                             f"concepts each, drawn whole on pages 2–{len(pages)}")
                ax.set_title(head, fontsize=10, loc="left")
            else:
                parts = page["_parts"]
                rows = sum(len(lab) for _c, _z, lab in parts)
                fs = _font(max(rows, 30))
                heights = [len(lab) + 2.2 for _c, _z, lab in parts]
                fig, axes = plt.subplots(len(parts), 1, figsize=(7.0, 0.7 + sum(heights) * fs * 1.75 / 72),
                                         gridspec_kw={"height_ratios": heights}, squeeze=False)
                for ax, (code, Zs, labels) in zip(axes[:, 0], parts):
                    _draw_dendrogram(ax, Zs, labels, fs, sub_max)
                    ax.set_title(f"{code} · {len(labels)} concepts", fontsize=9, loc="left", fontweight="bold")
                axes[-1, 0].set_xlabel(xlabel, fontsize=8)
                fig.suptitle((title or f"Hierarchy of {n} concepts") + suffix, fontsize=10, x=0.02, ha="left")
                fig.tight_layout(h_pad=0.6)
            for book in books:
                book.savefig(fig, bbox_inches="tight")
            paths = [p if k == 1 else p.with_name(f"{p.stem}.page{k}{p.suffix}") for p in others]
            save_figure(fig, paths)
            written += paths
    for p in others:
        pattern = re.compile(re.escape(p.stem) + r"\.page(\d+)" + re.escape(p.suffix) + "$")
        for stale in p.parent.glob(f"{p.stem}.page*{p.suffix}"):
            m = pattern.match(stale.name)
            if m and int(m.group(1)) > len(pages):
                stale.unlink(missing_ok=True)
    return pdfs + written


# --------------------------------------------------------------------------------------
# Graphviz rendering
# --------------------------------------------------------------------------------------


def _png_dpi(src: str, default: float = 150.0) -> float:
    """A PNG resolution that keeps the preview's longest side under
    :data:`_GRAPHVIZ_PNG_MAX_PX` (from the layout's size in inches)."""
    import graphviz

    try:
        first = graphviz.Source(src).pipe(format="plain").decode().split("\n", 1)[0].split()
        w, h = float(first[2]), float(first[3])
    except Exception:  # noqa: BLE001 — only a preview's resolution depends on it
        return 60.0
    return float(np.clip(min(default, _GRAPHVIZ_PNG_MAX_PX / max(w, h, 1e-6)), 24.0, default))


def _with_dpi(src: str, dpi: float) -> str:
    return src.replace("{", f"{{\n\tdpi={dpi:.0f}", 1)


def _inline_images(svg: bytes, files: Mapping[str, Path]) -> bytes:
    """Replace references to the temporary thumbnail files with data URIs."""
    text = svg.decode()
    for ref, path in files.items():
        uri = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
        text = text.replace(f'"{ref}"', f'"{uri}"')
    return text.encode()


def _render(src: str, outs: Sequence[Path], images: Mapping[str, Path] | None = None) -> None:
    """Write DOT source to each path: the PNG at a resolution fitting its size; an SVG
    with its thumbnails (``images``, file name → path) embedded."""
    import graphviz

    pngs = [p for p in outs if p.suffix.lower() == ".png"]
    svgs = [p for p in outs if p.suffix.lower() == ".svg"] if images else []
    rest = [p for p in outs if p not in pngs and p not in svgs]
    if rest:
        render(src, rest)
    if pngs:
        render(_with_dpi(src, _png_dpi(src)), pngs)
    if svgs:
        render(src, [])  # the `dot` check
        data = _inline_images(graphviz.Source(src).pipe(format="svg"), {str(v): v for v in images.values()})
        for p in svgs:
            with wio.atomic_path(p, suffix=".svg") as tmp:
                Path(tmp).write_bytes(data)


def _label(*lines: str, bold_first: bool = False, size: float | None = None) -> str:
    """An HTML-like Graphviz label (text escaped)."""
    parts = [html.escape(s) for s in lines]
    if bold_first and parts:
        parts[0] = f"<B>{parts[0]}</B>"
    body = "<BR/>".join(parts)
    return f'<<FONT POINT-SIZE="{size:g}">{body}</FONT>>' if size else f"<{body}>"


def _colour_key(title: str, lo: float, hi: float, cmap: Any, steps: int = 7) -> str:
    cells = "".join(f'<TD BGCOLOR="{_hex(cmap(k / (steps - 1)))}" WIDTH="22" HEIGHT="10" FIXEDSIZE="TRUE"></TD>'
                    for k in range(steps))
    return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
            f'<TR><TD COLSPAN="{steps}"><FONT POINT-SIZE="9">{html.escape(title)}</FONT></TD></TR>'
            f'<TR>{cells}</TR><TR><TD COLSPAN="2" ALIGN="LEFT"><FONT POINT-SIZE="8">{lo:.3g}</FONT></TD>'
            f'<TD COLSPAN="{steps - 4}"></TD>'
            f'<TD COLSPAN="2" ALIGN="RIGHT"><FONT POINT-SIZE="8">{hi:.3g}</FONT></TD></TR></TABLE>>')


# --------------------------------------------------------------------------------------
# Minimum spanning tree (Dai, Fig. 8, left)
# --------------------------------------------------------------------------------------


def _check_edges(edges: Any, n: int) -> list[tuple[int, int, float]]:
    try:
        rows = [(int(e[0]), int(e[1]), float(e[2])) for e in edges]
    except (TypeError, ValueError, IndexError) as e:
        raise ValueError(f"edges must be (i, j, weight) triples: {e}") from None
    if len(rows) != n - 1:
        raise ValueError(f"edges has {len(rows)} edges, but a spanning tree of the {n} names has {n - 1}")
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j, w in rows:
        if not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"edges has edge ({i}, {j}) outside the {n} names (indices 0–{n - 1})")
        if i == j:
            raise ValueError(f"edges has a loop ({i}, {i})")
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"edges has weight {w} on ({i}, {j}): weights must be finite and ≥ 0")
        ri, rj = find(i), find(j)
        if ri == rj:
            raise ValueError(f"edges is not a tree: ({i}, {j}) closes a cycle")
        parent[ri] = rj
    return rows


def mst_dot(edges: Sequence[tuple[int, int, float]], names: Sequence[str], title: str = "",
            highlight: Sequence[str] = ("noise",)) -> str:
    """DOT source of the MST drawing (see :func:`mst_figure`)."""
    import graphviz
    from matplotlib import colormaps

    if names is None or isinstance(names, str):
        raise ValueError(f"names must be a sequence of concept names, not {type(names).__name__}")
    names = [str(x) for x in names]
    if not names:
        raise ValueError("names is empty")
    n = len(names)
    rows = _check_edges(edges, n)
    marked = {h.lower() for h in highlight}
    w = np.array([r[2] for r in rows]) if rows else np.zeros(0)
    lo, hi = (float(w.min()), float(w.max())) if w.size else (0.0, 0.0)
    med = float(np.median(w[w > 0])) if (w > 0).any() else 1.0
    fs = 11 if n <= MST_EDGE_LABELS_MAX else 9
    scale = 1.3 if n <= MST_EDGE_LABELS_MAX else 0.7  # inches for the median edge
    pad = 0.45 if n <= MST_EDGE_LABELS_MAX else 0.12  # inches between two names: room for a weight label
    half = [0.08 + 0.3 * fs / 72 * len(_clip(nm, 32)) for nm in names]  # half a name's box, inches
    cmap = colormaps["viridis"]
    labels_on = n <= MST_EDGE_LABELS_MAX
    degree = np.bincount(np.array([[i, j] for i, j, _ in rows], dtype=int).ravel(), minlength=n) if rows else \
        np.zeros(n, dtype=int)
    g = graphviz.Graph("mst")
    g.attr(layout="neato", mode="major", overlap="prism", overlap_scaling="-2", sep="+6", splines="true",
           outputorder="edgesfirst", forcelabels="true", fontname="Helvetica", fontsize="12", labelloc="t",
           label=_label(title or f"Minimum spanning tree of {n} concepts"), start="0")
    g.attr("node", fontname="Helvetica", fontsize=str(fs), shape="box", style="rounded,filled", fillcolor="#f2f2f2",
           color="#666666", margin="0.06,0.03", height="0.2", width="0.2")
    g.attr("edge", fontname="Helvetica", fontsize="8", fontcolor="#333333")
    for i, name in enumerate(names):
        attrs = dict(tooltip=f"{name}: degree {degree[i]}")
        if name.lower() in marked:
            attrs.update(fillcolor=_NOISE, fontcolor="white", color="black", penwidth="2", style="rounded,filled,bold")
        elif n > 2 and degree[i] == degree.max() and degree.max() >= 3:
            attrs.update(penwidth="2", color="black")  # the hub(s)
        g.node(f"c{i}", label=_label(_clip(name, 32)), **attrs)
    for i, j, wt in rows:
        t = (wt - lo) / (hi - lo) if hi > lo else 0.0
        length = min(max(scale * wt / med, half[i] + half[j] + pad), 8.0)
        attrs = dict(len=f"{length:.3f}", color=_hex(cmap(0.9 * t)),
                     penwidth=f"{3.0 - 2.0 * t:.2f}", tooltip=f"{names[i]} – {names[j]}: {wt:.4g}")
        if labels_on:  # an external label: placed after the layout, clear of the nodes
            attrs["xlabel"] = f"{wt:.3g}"
        g.edge(f"c{i}", f"c{j}", **attrs)
    if rows and not labels_on:
        g.node("key", label=_colour_key("edge weight (short, thick: similar)", lo, hi,
                                        lambda x: cmap(0.9 * x)), shape="plaintext", pos="0,0", style="")
    return g.source


def mst_figure(edges: Sequence[tuple[int, int, float]], names: Sequence[str], out: Out, title: str = "",
               highlight: Sequence[str] = ("noise",)) -> str:
    """The minimum spanning tree over concepts, laid out by Graphviz (``neato``, stress
    majorisation): each edge's length proportional to its weight (½(1 − cos) distance),
    its colour and width too (short, thick, dark: similar); the weight printed on each
    edge up to :data:`MST_EDGE_LABELS_MAX` concepts, else a colour key.  Concepts named
    in ``highlight`` (default "noise", any case) are filled orange; the hub (largest
    degree, ≥ 3) has a bold border.

    Parameters
    ----------
    edges : sequence of (i, j, weight)
        The tree's w − 1 edges over the w names (indices into ``names``).
    names : sequence of str
    out : path or sequence of paths
        A single path writes its .svg and .png (the PNG is a preview, resolution capped);
        a sequence writes exactly those (svg, png, pdf, gv).
    title : str
    highlight : names to mark

    Returns
    -------
    str
        The DOT source.
    """
    src = mst_dot(edges, names, title=title, highlight=highlight)
    _render(src, _graphviz_outs(out))
    return src


# --------------------------------------------------------------------------------------
# UMAP maps (Dai, Fig. 9)
# --------------------------------------------------------------------------------------


def _points(x: Any, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{what} must be an n × 2 array of map coordinates, not shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} has non-finite coordinates")
    return x


def _spread(points: np.ndarray, k: int, min_sep: float = 0.0) -> list[int]:
    """Up to k indices spread over the points (greedy farthest-point, from the one nearest
    the centre), none closer than ``min_sep`` to one chosen before."""
    k = min(k, len(points))
    first = int(np.argmin(((points - points.mean(axis=0)) ** 2).sum(axis=1)))
    chosen = [first]
    d = ((points - points[first]) ** 2).sum(axis=1)
    while len(chosen) < k:
        nxt = int(np.argmax(d))
        if d[nxt] < min_sep**2:
            break
        chosen.append(nxt)
        d = np.minimum(d, ((points - points[nxt]) ** 2).sum(axis=1))
    return chosen


def _label_space(points: np.ndarray, panel: np.ndarray | None = None) -> np.ndarray:
    """Coordinates in which 1 is about one text label apart (a label spans some 12 % of
    the panel's width and 4.5 % of its height; the panel spans ``panel``, default the
    points themselves), for :func:`_spread`'s ``min_sep``."""
    span = np.ptp(points if panel is None else panel, axis=0).astype(np.float64)
    span[span == 0] = 1.0
    return points / (span * np.array([0.12, 0.045]))


def _concept_colours(points: np.ndarray) -> list:
    """tab10 / tab20 for few concepts; above, the hue of each concept's angle around the
    concepts' centre, so nearby concepts share colours in both panels."""
    plt = _pyplot()
    n = len(points)
    if n <= 10:
        return _colours(n)
    if n <= 20:
        cmap = plt.get_cmap("tab20")
        return [cmap(i) for i in range(n)]
    c = points - points.mean(axis=0)
    hue = (np.arctan2(c[:, 1], c[:, 0]) + np.pi) / (2 * np.pi)
    cmap = plt.get_cmap("hsv")
    return [cmap(0.92 * h) for h in hue]


def umap_figure(points_images: np.ndarray, image_labels: Sequence, points_concepts: np.ndarray,
                concept_names: Sequence[str], out: Out, title: str = "") -> Any:
    """Two maps (Dai, Fig. 9): left the images, coloured by their concept; right the
    concepts' representative vectors, labelled.

    Up to :data:`LEGEND_MAX` concepts the images panel has a legend and every concept is
    labelled; above, there is no legend, colours follow each concept's direction from
    the centre of the concept map (nearby concepts look alike in both panels) and
    :data:`_ANNOTATE_MAX` concepts spread over the map are labelled, in both panels (in
    the images panel at the median of the concept's images).

    Parameters
    ----------
    points_images : array, N × 2
    image_labels : sequence of N concept indices (into ``concept_names``) or names
        (names are ambiguous where ``concept_names`` repeats one: indices are safer)
    points_concepts : array, C × 2
    concept_names : sequence of C names
    out : path or sequence of paths
    title : str

    Returns
    -------
    matplotlib Figure (saved and closed; its artists can still be inspected).
    """
    plt = _pyplot()
    P = _points(points_images, "points_images")
    Q = _points(points_concepts, "points_concepts")
    names = _check_names(concept_names, len(Q), "points_concepts", "points")
    labels = list(image_labels) if image_labels is not None else []
    if len(labels) != len(P):
        raise ValueError(f"image_labels has {len(labels)} entries but points_images has {len(P)}")
    index: dict[str, int] = {}
    for i, nm in enumerate(names):
        index.setdefault(nm, i)
    if len(index) < len(names) and any(isinstance(x, str) for x in labels[:1]):
        dup = sorted({nm for nm in names if names.count(nm) > 1})
        log.warning("umap_figure: concept_names repeats %s; images labelled by such a name are coloured as its "
                    "first concept (pass concept indices to tell them apart)", dup[:5])
    try:
        lab = np.array([index[str(x)] if isinstance(x, str) else int(x) for x in labels], dtype=int)
    except KeyError as e:
        raise ValueError(f"image_labels has {e.args[0]!r}, which is not in concept_names") from None
    if lab.size and (lab.min() < 0 or lab.max() >= len(names)):
        raise ValueError(f"image_labels must index concept_names (0–{len(names) - 1}); got {lab.min()}–{lab.max()}")
    C = len(names)
    colours = _concept_colours(Q)
    few = C <= LEGEND_MAX
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12.5 if few else 13.0, 5.6), layout="constrained")
    size = float(np.clip(3000.0 / max(len(P), 1), 1.5, 30.0))
    order = np.random.default_rng(0).permutation(len(P))  # no concept hidden under the last one drawn
    ax.scatter(P[order, 0], P[order, 1], c=[colours[i] for i in lab[order]], s=size, lw=0, alpha=0.75,
               rasterized=True)
    ax.set_title(f"images (n = {len(P)}), coloured by concept", fontsize=9)
    bx.scatter(Q[:, 0], Q[:, 1], c=colours, s=60 if C <= 30 else 30, edgecolors="0.15", linewidths=0.6, zorder=3)
    bx.set_title(f"representative vectors ({C} concepts)", fontsize=9)
    shown = list(range(C)) if C <= _ANNOTATE_MAX else _spread(_label_space(Q), _ANNOTATE_MAX, 1.0)
    fs = 8 if C <= 20 else 7
    box = dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.75)
    for i in shown:
        bx.annotate(_clip(names[i], 24), Q[i], xytext=(4, 3), textcoords="offset points", fontsize=fs, bbox=box,
                    zorder=4)
    if few:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], ls="", marker="o", mfc=colours[i], mec="none", ms=6, label=_clip(names[i], 24))
                   for i in range(C)]
        ax.legend(handles=handles, fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  ncol=1 if C <= 12 else 2, handletextpad=0.2, borderaxespad=0.2)
    else:
        present = [i for i in range(C) if (lab == i).any()]
        if present:  # label the images' concepts where they lie, spread over the images' map
            medians = np.array([np.median(P[lab == i], axis=0) for i in present])
            for j in _spread(_label_space(medians, panel=P), _ANNOTATE_MAX, 1.0):
                ax.annotate(_clip(names[present[j]], 20), medians[j], fontsize=6.5, ha="center", va="center",
                            bbox=box, zorder=4)
        bx.text(0.0, -0.02, f"{len(shown)} of {C} concepts labelled, spread over the map; colour: direction "
                "from the map's centre",
                transform=bx.transAxes, fontsize=7, color="0.35", va="top")
    for a in (ax, bx):
        a.set_xticks([])
        a.set_yticks([])
        a.set_aspect("equal", adjustable="datalim")
        for side in ("top", "right"):
            a.spines[side].set_visible(True)
        for side in a.spines.values():
            side.set_color("0.7")
    fig.suptitle(title or "UMAP maps", fontsize=10)
    save_figure(fig, _outs(out))
    return fig


# --------------------------------------------------------------------------------------
# Agreement with a reference hierarchy through the layers
# --------------------------------------------------------------------------------------

_AGREEMENT_COLUMNS = ("model", "image_set", "layer", "layer_index", "block", "reference", "statistic", "value", "p",
                      "q", "significant")


def _statistic_key(stat: str) -> tuple:
    m = re.fullmatch(r"fowlkes_mallows_k(\d+)", str(stat))
    return (0, 0, str(stat)) if stat == "cophenetic" else ((1, int(m.group(1)), "") if m else (2, 0, str(stat)))


def _statistic_label(stat: str) -> str:
    m = re.fullmatch(r"fowlkes_mallows_k(\d+)", str(stat))
    if stat == "cophenetic":
        return "cophenetic r"
    return f"Fowlkes–Mallows (k = {m.group(1)})" if m else str(stat)


def _reference_label(ref: str) -> str:
    return "WordNet" if str(ref).lower() == "wordnet" else str(ref)


def agreement_curve(frame: pd.DataFrame, out: Out, title: str = "", two_vs_two: pd.DataFrame | None = None) -> Any:
    """Agreement of each layer's category hierarchy with reference hierarchies.

    One line per (reference, statistic) — per image set too when there are several —
    through the layers in graph order (blocks shaded alternately, markers alternating
    per block, as the 2 vs. 2 figure); filled markers: significant after BHY
    (``significant``); the cophenetic null level 0 dashed (Fowlkes–Mallows has a positive chance level; its p-values say where it lies).  Colour tells the lines apart, and the
    line style the reference (solid: the first).

    Parameters
    ----------
    frame : DataFrame
        Columns model, image_set, layer, layer_index, block, reference, statistic
        (``"cophenetic"``, ``"fowlkes_mallows_k<k>"``, …), value, p, q, significant;
        one model.
    out : path or sequence of paths
    title : str
    two_vs_two : DataFrame, optional
        The model's tidy 2 vs. 2 table (statistic ``"2v2"``, group ``"mean"`` rows are
        used): drawn in a second panel below, on the same layer axis (matched by layer
        name; layers without an agreement row are left out), one line per (DS model,
        image set), chance 0.5.

    Returns
    -------
    matplotlib Figure (saved and closed); ``fig.axes[0]`` the agreement panel,
    ``fig.axes[1]`` the 2 vs. 2 panel when drawn.
    """
    plt = _pyplot()
    if frame is None or len(frame) == 0:
        raise ValueError("frame is empty: no agreement rows to plot")
    missing = [c for c in _AGREEMENT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing}")
    models = frame["model"].unique()
    if len(models) > 1:
        raise ValueError(f"frame holds several models {list(models)[:4]}: draw one model per figure")
    t = frame.sort_values("layer_index")
    order = t.drop_duplicates("layer_index")
    layers, blocks = order["layer"].astype(str).tolist(), order["block"].fillna("").astype(str).tolist()
    position = {li: k for k, li in enumerate(order["layer_index"])}
    two = _two_vs_two_rows(two_vs_two, layers)
    if two is None:
        fig, ax = plt.subplots(figsize=(_width(len(layers)), 4.2))
        axes = [ax]
    else:
        fig, axes = plt.subplots(2, 1, figsize=(_width(len(layers)), 6.6), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 2], "hspace": 0.08})
        ax = axes[0]
    for a in axes:
        _layer_axis(a, layers, blocks)
    if two is not None:
        ax.tick_params(axis="x", labelbottom=False)
        ax.set_xlabel("")
    refs = list(dict.fromkeys(t["reference"]))
    stats = sorted(dict.fromkeys(t["statistic"]), key=_statistic_key)
    sets = list(dict.fromkeys(t["image_set"]))
    keys = [(r, s, i) for r in refs for s in stats for i in sets
            if ((t["reference"] == r) & (t["statistic"] == s) & (t["image_set"] == i)).any()]
    styles = ("-", "--", ":", "-.")
    handles, labels = [], []
    for colour, (ref, stat, iset) in zip(_colours(len(keys)), keys):
        s = t[(t["reference"] == ref) & (t["statistic"] == stat) & (t["image_set"] == iset)]
        x = s["layer_index"].map(position).to_numpy(dtype=float)
        label = f"{_reference_label(ref)} · {_statistic_label(stat)}" + (f" · {iset}" if len(sets) > 1 else "")
        line = _series(ax, x, s["value"].to_numpy(dtype=float), s["significant"].fillna(False).to_numpy(bool),
                       [blocks[int(i)] for i in x], colour, label)
        line.set_linestyle(styles[refs.index(ref) % len(styles)])
        handles.append(line)
        labels.append(label)
    null = ax.axhline(0.0, color="0.4", ls=(0, (4, 3)), lw=0.9, zorder=1)  # the legend names it (no text
    # in the plot, where it would cover the first or last layer's markers)
    v = t["value"].dropna()
    lo = min(-0.05, float(v.min()) - 0.05) if len(v) else -0.05
    hi = min(1.02, max(0.3, float(v.max()) + 0.05)) if len(v) else 1.0
    ax.set_ylim(max(lo, -1.02), hi)
    ax.set_ylabel("agreement with the\nreference hierarchy" if two is not None else
                  "agreement with the reference hierarchy")
    ax.set_title(title or f"Category hierarchy per layer vs. reference ({models[0]})")
    _marker_legend(ax, handles + [null], labels + ["0 (no agreement: cophenetic r)"], loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if two is not None:
        _two_vs_two_panel(axes[1], two, layers, blocks)
    save_figure(fig, _outs(out))
    return fig


def _two_vs_two_rows(table: pd.DataFrame | None, layers: Sequence[str]) -> pd.DataFrame | None:
    """The group-mean 2 vs. 2 rows of the agreement figure's layers (None: nothing to draw)."""
    if table is None or len(table) == 0:
        return None
    need = {"statistic", "group", "layer", "value", "significant", "ds_model", "image_set"}
    missing = sorted(need - set(table.columns))
    if missing:
        raise ValueError(f"two_vs_two lacks columns {missing}")
    t = table[(table["statistic"] == "2v2") & (table["group"] == "mean")]
    t = t[t["layer"].astype(str).isin(set(layers))]
    dropped = set(table["layer"].astype(str)) - set(layers)
    if dropped:
        log.info("agreement_curve: %d 2 vs. 2 layer(s) without agreement rows left out", len(dropped))
    return t if len(t) else None


def _two_vs_two_panel(ax: Any, t: pd.DataFrame, layers: Sequence[str], blocks: Sequence[str]) -> None:
    from wordlens.figures import CHANCE

    position = {name: k for k, name in enumerate(layers)}
    keys = list(t.groupby(["ds_model", "image_set"], sort=False).groups)
    handles, labels = [], []
    for colour, (ds, iset) in zip(_colours(len(keys)), keys):
        s = t[(t["ds_model"] == ds) & (t["image_set"] == iset)].copy()
        s["_x"] = s["layer"].astype(str).map(position)
        s = s.sort_values("_x")
        x = s["_x"].to_numpy(dtype=float)
        label = f"2 vs. 2 · {ds}" + (f" · {iset}" if len({k[1] for k in keys}) > 1 else "")
        handles.append(_series(ax, x, s["value"].to_numpy(dtype=float), s["significant"].fillna(False).to_numpy(bool),
                               [blocks[int(i)] for i in x], colour, label))
        labels.append(label)
    chance = ax.axhline(CHANCE, color="0.4", ls=(0, (4, 3)), lw=0.9, zorder=1)
    v = t["value"].dropna()
    ax.set_ylim(min(0.4, float(v.min()) - 0.03) if len(v) else 0.4,
                min(1.0, max(0.75, float(v.max()) + 0.05)) if len(v) else 0.75)
    ax.set_ylabel("2 vs. 2 accuracy")
    _marker_legend(ax, handles + [chance], labels + ["chance (0.5)"], loc="upper left", bbox_to_anchor=(1.0, 1.0))


# --------------------------------------------------------------------------------------
# Prediction tree (Dai, Algorithm 2, Fig. 10)
# --------------------------------------------------------------------------------------


def _check_tree(nodes: Any) -> tuple[dict[int, Mapping[str, Any]], int]:
    if nodes is None or len(nodes) == 0:
        raise ValueError("nodes is empty: no prediction tree to draw")
    by_id: dict[int, Mapping[str, Any]] = {}
    for k, node in enumerate(nodes):
        if not isinstance(node, Mapping):
            raise ValueError(f"nodes[{k}] must be a mapping, not {type(node).__name__}")
        missing = [key for key in ("id", "children", "filters", "critical_filter", "distance") if key not in node]
        if missing:
            raise ValueError(f"nodes[{k}] lacks keys {missing}")
        i = int(node["id"])
        if i in by_id:
            raise ValueError(f"nodes has id {i} twice")
        by_id[i] = node
    child_of: dict[int, int] = {}
    for i, node in by_id.items():
        for c in node["children"]:
            c = int(c)
            if c not in by_id:
                raise ValueError(f"nodes: node {i} has child {c}, which is not a node")
            if c in child_of:
                raise ValueError(f"nodes: node {c} is a child of both {child_of[c]} and {i}")
            child_of[c] = i
    roots = [i for i in by_id if i not in child_of]
    if len(roots) != 1:
        raise ValueError(f"nodes must form one tree with one root; found {len(roots)} roots {roots[:5]}")
    seen, stack = set(), [roots[0]]
    while stack:
        x = stack.pop()
        seen.add(x)
        stack.extend(int(c) for c in by_id[x]["children"])
    if len(seen) != len(by_id):
        raise ValueError("nodes: some nodes are not reachable from the root (a cycle)")
    return by_id, roots[0]


def _leaf_image(node: Mapping[str, Any]) -> int:
    images = node.get("images")
    return int(images[0]) if images is not None and len(images) == 1 else int(node["id"])


def _thumb(image: Mapping | Sequence | np.ndarray | None, key: int) -> np.ndarray | None:
    if image is None:
        return None
    if isinstance(image, Mapping):
        return image.get(key, image.get(str(key)))
    return image[key] if 0 <= key < len(image) else None


def _write_thumb(img: np.ndarray, path: Path) -> None:
    from matplotlib.image import imsave

    from wordlens.figures import _to_display

    arr = np.nan_to_num(np.asarray(img, dtype=np.float32))
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        arr = _to_display(arr)
    elif arr.ndim != 2 and not (arr.ndim == 3 and arr.shape[2] in (3, 4)):
        raise ValueError(f"image_thumbs: a thumbnail must be C × H × W (C = 1 or 3) or H × W, not {arr.shape}")
    side = max(arr.shape[:2])
    rep = max(1, int(np.ceil(96 / side)))  # small images (CIFAR, MNIST) upscaled with square pixels
    if rep > 1:
        arr = np.repeat(np.repeat(arr, rep, axis=0), rep, axis=1)
    imsave(path, np.clip(arr, 0, 1), cmap="gray", vmin=0, vmax=1)


def prediction_tree_dot(nodes: Sequence[Mapping[str, Any]], title: str = "",
                        thumbs: Mapping[int, Path] | None = None, leaf_labels: Mapping | Sequence | None = None
                        ) -> str:
    """DOT source of the prediction tree (see :func:`prediction_tree_figure`);
    ``thumbs``: leaf id → PNG file."""
    import graphviz
    from matplotlib import colormaps

    by_id, root = _check_tree(nodes)
    thumbs = thumbs or {}
    leaves = [i for i, nd in by_id.items() if not nd["children"]]
    merges = [i for i, nd in by_id.items() if nd["children"] and i != root]
    n_filters = max((len(nd["filters"]) for nd in by_id.values()), default=0)
    big = len(leaves) > 40
    cmap = colormaps["Blues"]
    g = graphviz.Digraph("prediction_tree")
    g.attr(rankdir="LR" if big else "TB", nodesep="0.08" if big else "0.15", ranksep="0.25", fontname="Helvetica",
           fontsize="12", labelloc="t", ordering="out",
           label=_label(title or f"Prediction tree: {len(leaves)} images, {len(merges)} merges, "
                                 f"{n_filters} filters"))
    g.attr("node", fontname="Helvetica", fontsize="9", margin="0.05,0.02")
    g.attr("edge", arrowsize="0.4", color="#777777", dir="none")
    fs = [len(by_id[i]["filters"]) for i in merges]
    lo, hi = (min(fs), max(fs)) if fs else (0, 1)
    root_node = by_id[root]
    k = len(root_node["children"])
    g.node(f"n{root}", label=_label("root", f"{k} subtree{'s' if k != 1 else ''}",
                                    f"{len(root_node['filters'])} filters", bold_first=True),
           shape="doubleoctagon", style="filled", fillcolor="#fff3e0", color="#b35806")
    for i in merges:
        nd = by_id[i]
        F = nd["critical_filter"]
        d = nd["distance"]
        frac = (len(nd["filters"]) - lo) / (hi - lo) if hi > lo else 0.5
        rgba = cmap(0.15 + 0.55 * frac)
        g.node(f"n{i}", label=_label("no critical filter" if F is None else f"F {int(F)}",
                                     f"{len(nd['filters'])} reachable", "" if d is None else f"d {float(d):.3g}",
                                     bold_first=True),
               shape="box", style="rounded,filled", fillcolor=_hex(rgba), fontcolor=_text_colour(rgba),
               tooltip=f"node {i}: critical filter {F}, {len(nd['filters'])} reachable filters, distance {d}")
    with g.subgraph(name="leaves") as sg:
        sg.attr(rank="sink")
        for i in leaves:
            index = _leaf_image(by_id[i])
            name = _thumb(leaf_labels, index) if leaf_labels is not None else None
            img = _clip(str(name), 24) if name is not None else f"img {index}"
            if i in thumbs:
                lab = (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">'
                       f'<TR><TD FIXEDSIZE="TRUE" WIDTH="44" HEIGHT="44"><IMG SRC="{html.escape(str(thumbs[i]))}" '
                       f'SCALE="TRUE"/></TD></TR><TR><TD><FONT POINT-SIZE="7">{html.escape(img)}</FONT></TD></TR>'
                       '</TABLE>>')
                sg.node(f"n{i}", label=lab, shape="plaintext", tooltip=f"image {index}: {img}")
            else:
                sg.node(f"n{i}", label=_label(img, size=8), shape="ellipse", style="filled",
                        fillcolor="#eeeeee", color="#999999", height="0.2", tooltip=f"image {index}: {img}")
    for i, nd in by_id.items():
        for c in nd["children"]:
            g.edge(f"n{i}", f"n{int(c)}")
    return g.source


def prediction_tree_figure(nodes: Sequence[Mapping[str, Any]], out: Out, title: str = "",
                           image_thumbs: Mapping[int, np.ndarray] | Sequence[np.ndarray] | np.ndarray | None = None,
                           leaf_labels: Mapping[int, str] | Sequence[str] | None = None) -> str:
    """Dai's filter prediction tree (Algorithm 2, Fig. 10) via Graphviz ``dot``.

    The root on top (left for more than 40 images), the images as leaves on the last
    rank; each merge labelled with its critical filter ("F 37"), its number of reachable
    filters and its merge distance, shaded by the number of reachable filters.

    Parameters
    ----------
    nodes : sequence of mappings
        Keys id, children (ids), filters (reachable), critical_filter (int or None),
        distance (float or None); optional ``images`` (a leaf's image index).  As
        :func:`wordlens.clustering.prediction_tree` returns.
    out : path or sequence of paths
        A single path writes its .svg and .png; a sequence exactly those.
    title : str
    image_thumbs : mapping or sequence, optional
        Each leaf's image (C × H × W or H × W in [0, 1]), by the leaf's image index:
        drawn as thumbnails (embedded in the SVG).
    leaf_labels : mapping or sequence, optional
        Each leaf's label (e.g. its image id), by the leaf's image index; default
        ``img <index>``.

    Returns
    -------
    str
        The DOT source (thumbnail paths in it are temporary).
    """
    by_id, _root = _check_tree(nodes)
    outs = _graphviz_outs(out)
    with tempfile.TemporaryDirectory(prefix="wordlens-thumbs-") as tmp:
        thumbs: dict[int, Path] = {}
        if image_thumbs is not None:
            for i, nd in by_id.items():
                if not nd["children"]:
                    img = _thumb(image_thumbs, _leaf_image(nd))
                    if img is not None:
                        path = Path(tmp) / f"thumb{i}.png"
                        _write_thumb(img, path)
                        thumbs[i] = path
        src = prediction_tree_dot(nodes, title=title, thumbs=thumbs, leaf_labels=leaf_labels)
        _render(src, outs, images=thumbs or None)
    return src
