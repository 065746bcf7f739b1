"""Annotated architecture diagrams: the network's graph laid out by Graphviz, each analysed
node coloured by its 2 vs. 2 accuracy (2021 paper, Appendix Figures 8–9).

The graph is the eval-mode torch.fx graph (:func:`wordlens.layers.graph_edges`), so skip
connections, parallel Inception branches and FractalNet columns appear as they run.
Graphviz's ``dot`` (Debian package ``graphviz``) does the layout; the Python package
``graphviz`` writes the DOT source and calls it.  SVG and PDF stay sharp at any zoom
(Inception-v3 has over 300 nodes); the PNG is a preview.
"""

from __future__ import annotations

import html
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wordlens import io as wio

log = logging.getLogger(__name__)

CHANCE = 0.5
CMAP = "RdBu_r"  # diverging around chance: blue below, red above
_KIND_SHAPES = {"input": "invhouse", "add": "circle", "cat": "circle", "linear": "box3d"}


def colour_scale(values: Sequence[float]) -> tuple[float, float]:
    """A colour range centred on chance (0.5), wide enough for every value (at least ±0.1,
    rounded up to 0.05), so equal distances from chance look equally strong."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    half = float(np.max(np.abs(v - CHANCE))) if v.size else 0.1
    half = max(0.1, np.ceil(half * 20 - 1e-9) / 20)
    return CHANCE - half, CHANCE + half


def _hex(rgba: Sequence[float]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(round(255 * c)) for c in rgba[:3]))


def _text_colour(rgba: Sequence[float]) -> str:
    r, g, b = rgba[:3]
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"


def _legend(vmin: float, vmax: float, cmap, steps: int = 9) -> str:
    """An HTML-like Graphviz label: the colour bar with tick values."""
    cells, ticks = [], []
    for k in range(steps):
        v = vmin + (vmax - vmin) * k / (steps - 1)
        cells.append(f'<TD BGCOLOR="{_hex(cmap((v - vmin) / (vmax - vmin)))}" WIDTH="34" HEIGHT="12" '
                     'FIXEDSIZE="TRUE"></TD>')
        tick = f'<FONT POINT-SIZE="8">{v:.2f}</FONT>' if k % 2 == 0 else ""
        ticks.append(f'<TD WIDTH="34" HEIGHT="12" FIXEDSIZE="TRUE">{tick}</TD>')
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
            f'<TR><TD COLSPAN="{steps}"><FONT POINT-SIZE="9">2 vs. 2 accuracy (chance 0.50)<BR/>'
            'double border: significant after BHY</FONT></TD></TR>'
            f'<TR>{"".join(cells)}</TR><TR>{"".join(ticks)}</TR></TABLE>>')


def architecture_dot(nodes: Sequence, edges: Sequence[tuple[str, str]], values: Mapping[str, float],
                     significant: Mapping[str, bool] | None = None, title: str = "") -> str:
    """DOT source of the annotated graph.

    Parameters
    ----------
    nodes, edges
        From :func:`wordlens.layers.graph_edges`.
    values
        2 vs. 2 accuracy of each analysed node (by name); other nodes are drawn dashed.
    significant
        Nodes significant after BHY (drawn with a double border).
    """
    import graphviz
    from matplotlib import colormaps

    significant = significant or {}
    unknown = sorted(set(values) - {n.name for n in nodes})
    if unknown:
        raise ValueError(f"analysed layer(s) {unknown[:5]} are not nodes of this graph")
    vmin, vmax = colour_scale(list(values.values()))
    cmap = colormaps[CMAP]
    g = graphviz.Digraph("architecture")
    g.attr(rankdir="TB", nodesep="0.12", ranksep="0.22", fontname="Helvetica", fontsize="11",
           label=html.escape(title), labelloc="t")
    g.attr("node", fontname="Helvetica", fontsize="8", height="0.22", margin="0.05,0.02")
    g.attr("edge", arrowsize="0.45", color="#777777")
    g.node("legend", label=_legend(vmin, vmax, cmap), shape="plaintext")
    for n in nodes:
        shape = _KIND_SHAPES.get(n.kind, "box")
        if n.name in values and np.isfinite(values[n.name]):
            v = float(values[n.name])
            rgba = cmap((np.clip(v, vmin, vmax) - vmin) / (vmax - vmin))
            g.node(n.name, label=f"{n.name}\n{v:.3f}", shape="box", style="rounded,filled,bold",
                   fillcolor=_hex(rgba), fontcolor=_text_colour(rgba), color="black",
                   peripheries="2" if significant.get(n.name) else "1", tooltip=f"{n.name} ({n.kind}): {v:.4f}",
                   **{"class": "analysed"})
        else:
            small = shape in ("circle",)
            g.node(n.name, label="+" if n.kind == "add" else ("cat" if n.kind == "cat" else n.name),
                   shape=shape, style="rounded,dashed" if not small else "dashed", color="#9a9a9a",
                   fontcolor="#555555", width="0.25" if small else "0", fixedsize="true" if small else "false",
                   tooltip=f"{n.name} ({n.kind})", **{"class": "other"})
    for a, b in edges:
        g.edge(a, b)
    return g.source


def render(dot_source: str, outs: Sequence[str | Path], png_dpi: int = 60) -> None:
    """Lay out and write DOT source to each path (format from the suffix: svg, pdf, png, gv)."""
    import graphviz

    if shutil.which("dot") is None:
        raise RuntimeError("Graphviz's `dot` program is not installed; architecture diagrams need it "
                           "(Debian/Ubuntu: apt-get install graphviz; conda: conda install graphviz)")
    for out in outs:
        fmt = Path(out).suffix.lstrip(".")
        if fmt in ("gv", "dot"):
            data = dot_source.encode()
        else:
            src = dot_source
            if fmt == "png":  # a preview: coarser raster, the SVG/PDF carry the detail
                src = src.replace("digraph architecture {", f"digraph architecture {{\n\tdpi={png_dpi}", 1)
            data = graphviz.Source(src).pipe(format=fmt)
        with wio.atomic_path(out, suffix=Path(out).suffix) as tmp:
            Path(tmp).write_bytes(data)


def architecture_figure(table: Any, out: Sequence[str | Path], model_cfg: Mapping[str, Any], title: str) -> None:
    """The architecture graph of a model (built on the meta device: no weights) with each
    analysed layer coloured by its group-mean 2 vs. 2 accuracy in ``table`` (a tidy 2 vs. 2
    table of one model, DS model and image set) and significant layers double-bordered;
    written to every path of ``out`` (by suffix: svg, pdf, png)."""
    from wordlens.layers import graph_edges, meta_model

    t = table[(table["statistic"] == "2v2") & (table["group"] == "mean")]
    nodes, edges = graph_edges(meta_model(dict(model_cfg)))
    values = dict(zip(t["layer"], t["value"].astype(float)))
    significant = dict(zip(t["layer"], t["significant"].astype(bool)))
    render(architecture_dot(nodes, edges, values, significant, title=title), out,
           png_dpi=60 if len(nodes) > 120 else 110)
