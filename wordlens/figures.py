"""Figures: the papers' plots from the workflow's tidy tables (matplotlib; PDF and PNG)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
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
                     n_sources: int = 5, names: dict[str, str] | None = None) -> None:
    """Sample adversarial images: one row per source (its clean image first), one column
    per target category, titled source → target with the model's confidence.

    ``clean`` and ``adversarial`` are N × C × H × W in [0, 1], aligned with ``attacks``
    rows (columns source, target, category, category_rank, success, pred_concept, pred_prob).
    """
    plt = _pyplot()
    names = names or {}
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
        axes[i, 0].set_title(f"{_short(names.get(src, src))}\n(clean)", fontsize=7)
        for r in rows:
            a = attacks.loc[r]
            j = 1 + cats.index(a["category"])
            ax = axes[i, j]
            ax.imshow(_to_display(adversarial[r]), **grey)
            ok = bool(a["success"])
            got = "" if ok else f"✗ {_short(names.get(a['pred_concept'], a['pred_concept']), 10)} "
            ax.set_title(f"→ {_short(names.get(a['target'], a['target']))}\n{got}{a['pred_prob']:.2f}", fontsize=7,
                         color="#1b7837" if ok else "#b2182b")
    for j, c in enumerate(cats):
        axes[-1, 1 + j].set_xlabel(c, fontsize=7)
    axes[-1, 0].set_xlabel("source", fontsize=7)
    fig.suptitle("Targeted MIM: source → target, with the model's confidence in the target "
                 "(✗ class: not reached, the model says that class instead)", fontsize=8)
    fig.tight_layout()
    save_figure(fig, outs)


def _short(name: str, width: int = 14) -> str:
    name = str(name)
    return name if len(name) <= width else name[: width - 1] + "…"


# --------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------

CHANCE = 0.5
_MARKERS = ("o", "s")  # alternate per block / Inception module (2021 paper, Figure 2)
_CATEGORY_COLOURS = ("#b2182b", "#e66101", "#b8860b", "#4d9221", "#4393c3", "#2c3e91")  # most → least similar


def concept_names(concept_table: str | Path | None) -> dict[str, str]:
    """class id → readable name (its first synonym; e.g. n02084071 → dog)."""
    if concept_table is None:
        return {}
    table = pd.read_parquet(concept_table, columns=["class_id", "synonyms"])
    return {cid: (str(syn[0]) if len(syn) else str(cid)) for cid, syn in zip(table["class_id"], table["synonyms"])}


def _layer_axis(ax: Any, layers: Sequence[str], blocks: Sequence[str], max_labels: int = 40) -> None:
    """x axis of layers in graph order: layer names when few, else shaded blocks with their names."""
    n = len(layers)
    ax.set_xlim(-0.6, n - 0.4)
    starts = [i for i in range(n) if i == 0 or blocks[i] != blocks[i - 1]]
    ends = starts[1:] + [n]
    for k, (a, b) in enumerate(zip(starts, ends)):
        if k % 2:
            ax.axvspan(a - 0.5, b - 0.5, color="0.93", zorder=0, lw=0)
    if n <= max_labels:
        ax.set_xticks(range(n))
        ax.set_xticklabels(layers, rotation=90, fontsize=7 if n > 20 else 8)
    else:
        centres = [(a + b - 1) / 2 for a, b in zip(starts, ends)]
        ax.set_xticks(centres)
        ax.set_xticklabels([blocks[a] or "—" for a in starts], rotation=90, fontsize=7)
        ax.tick_params(axis="x", length=0)
    ax.set_xlabel("layer (graph order)" if n <= max_labels else "block / module (graph order; shaded alternately)")


def _series(ax: Any, x: np.ndarray, y: np.ndarray, significant: np.ndarray, blocks: Sequence[str], colour: Any,
            label: str, lw: float = 1.4, ms: float = 4.5) -> Any:
    """A line through the layers; markers filled where significant (BHY), alternating per block.

    ``blocks`` names the block of each point; returns the line (for a legend).
    """
    (line,) = ax.plot(x, y, color=colour, lw=lw, label=label, zorder=2)
    block_ids = np.cumsum([i == 0 or blocks[i] != blocks[i - 1] for i in range(len(blocks))])
    for parity in (0, 1):
        for sig in (True, False):
            mask = ((block_ids % 2) == parity) & (significant == sig)
            if mask.any():
                ax.scatter(x[mask], y[mask], marker=_MARKERS[parity], s=ms**2,
                           facecolors=colour if sig else "white", edgecolors=colour, linewidths=1.0, zorder=3)
    return line


def _undefined(ax: Any, rows: pd.DataFrame, colour: Any) -> bool:
    """Mark layers whose test is undefined (NaN because of constant activation rows) with a
    cross on the chance line; True if any was marked."""
    if "n_constant" not in rows:
        return False
    bad = rows[rows["value"].isna() & (rows["n_constant"] > 0)]
    if bad.empty:
        return False
    ax.scatter(bad["layer_index"], np.full(len(bad), CHANCE), marker="x", s=40, color=colour, linewidths=1.6,
               zorder=4)
    return True


def _marker_legend(ax: Any, handles: list, labels: list, undefined: bool = False, **kw) -> None:
    from matplotlib.lines import Line2D

    handles = list(handles) + [
        Line2D([], [], ls="", marker="o", mfc="0.3", mec="0.3", label="significant (BHY)"),
        Line2D([], [], ls="", marker="o", mfc="white", mec="0.3", label="not significant"),
    ]
    labels = list(labels) + ["significant (BHY)", "not significant"]
    if undefined:
        handles.append(Line2D([], [], ls="", marker="x", color="0.3", mew=1.6))
        labels.append("undefined: constant\nactivations (no value)")
    ax.legend(handles, labels, frameon=False, fontsize=7, **kw)


def _colours(n: int) -> list:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def _width(n_layers: int) -> float:
    return float(np.clip(2.2 + 0.16 * n_layers, 5.0, 16.0))


# --------------------------------------------------------------------------------------
# 2 vs. 2 through the layers (2018 Figure 1, 2021 Figure 2)
# --------------------------------------------------------------------------------------


def plot_two_vs_two(table: pd.DataFrame, out: Sequence[str | Path], title: str = "") -> None:
    """2 vs. 2 accuracy (mean over image groups) per layer of one model, one line per
    (DS model, image set); chance at 0.5; filled markers significant after BHY."""
    plt = _pyplot()
    t = table[(table["statistic"] == "2v2") & (table["group"] == "mean")].sort_values("layer_index")
    if t.empty:
        raise ValueError("no 2 vs. 2 rows (statistic 2v2, group mean) to plot")
    layer_order = t.drop_duplicates("layer_index").sort_values("layer_index")
    layers, blocks = layer_order["layer"].tolist(), layer_order["block"].fillna("").tolist()
    fig, ax = plt.subplots(figsize=(_width(len(layers)), 4.2))
    _layer_axis(ax, layers, blocks)
    keys = list(t.groupby(["ds_model", "image_set"], sort=False).groups)
    handles, labels, undefined = [], [], False
    for colour, (ds, iset) in zip(_colours(len(keys)), keys):
        s = t[(t["ds_model"] == ds) & (t["image_set"] == iset)]
        label = ds if len({k[1] for k in keys}) == 1 else f"{ds} · {iset}"
        idx = s["layer_index"].to_numpy()
        handles.append(_series(ax, idx, s["value"].to_numpy(), s["significant"].to_numpy(bool),
                               [blocks[i] for i in idx], colour, label))
        labels.append(label)
        undefined |= _undefined(ax, s, colour)
    ax.axhline(CHANCE, color="0.4", ls="--", lw=0.9, zorder=1)
    ax.text(len(layers) - 0.5, CHANCE, "chance", ha="right", va="bottom", fontsize=7, color="0.4")
    defined = t["value"].dropna()
    lo = min(0.4, float(defined.min()) - 0.03) if len(defined) else 0.4
    ax.set_ylim(lo, min(1.0, max(0.75, float(defined.max()) + 0.05)) if len(defined) else 0.75)
    ax.set_ylabel("2 vs. 2 accuracy")
    n_conc = int(t["n_concepts"].max())
    ax.set_title(title or f"2 vs. 2 through the layers ({n_conc} concepts, {int(t['n_permutations'].max())} permutations)")
    _marker_legend(ax, handles, labels, undefined=undefined, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save_figure(fig, out)


# --------------------------------------------------------------------------------------
# 1 vs. 2: misclassified (2021 Figures 4–5) and adversarial (Figure 6)
# --------------------------------------------------------------------------------------


def plot_one_vs_two(table: pd.DataFrame, out: Sequence[str | Path], title: str = "", by: str = "ds_model") -> None:
    """1 vs. 2 per layer (left) and averaged per block / module (right) of one model.

    ``by="ds_model"``: one line per DS model (misclassified images).  ``by="group"``: one
    line per similarity category plus the average over all adversarial images (bold).
    """
    plt = _pyplot()
    layer_rows = table[table["statistic"] == "1v2"].sort_values("layer_index")
    block_rows = table[table["statistic"] == "1v2_block_mean"].sort_values("layer_index")
    if layer_rows.empty:
        raise ValueError("no 1 vs. 2 rows to plot")
    order = layer_rows.drop_duplicates("layer_index")
    layers, blocks = order["layer"].tolist(), order["block"].fillna("").tolist()
    border = block_rows.drop_duplicates("layer_index")
    nb = len(border)
    fig, axes = plt.subplots(1, 2, figsize=(_width(len(layers)) + _width(nb) * 0.6, 4.2),
                             gridspec_kw={"width_ratios": [max(len(layers), 4), max(nb, 3) * 0.9]}, squeeze=False)
    ax, bx = axes[0]
    _layer_axis(ax, layers, blocks)
    if nb:
        _layer_axis(bx, border["layer"].tolist(), border["block"].fillna("").tolist())
        bx.set_xlabel("block / module")
    if by == "group":
        groups = [g for g in dict.fromkeys(layer_rows["group"]) if g != "all"]
        keys = [("group", g) for g in groups] + [("group", "all")]
        colours = dict(zip(groups, _CATEGORY_COLOURS if len(groups) <= 6 else _colours(len(groups))))
        colours["all"] = "black"
    else:
        keys = [("ds_model", d) for d in dict.fromkeys(layer_rows["ds_model"])]
        colours = dict(zip([k[1] for k in keys], _colours(len(keys))))
    handles, labels, undefined = [], [], False
    for column, key in keys:
        lw = 2.4 if key == "all" else 1.4
        handle = None
        undefined |= _undefined(ax, layer_rows[layer_rows[column] == key], colours[key])
        for axis, rows, blk in ((ax, layer_rows, blocks), (bx, block_rows, border["block"].fillna("").tolist())):
            s = rows[(rows[column] == key) & rows["value"].notna()]
            if s.empty:
                continue
            idx = s["layer_index"].to_numpy()
            line = _series(axis, idx, s["value"].to_numpy(), s["significant"].to_numpy(bool), [blk[i] for i in idx],
                           colours[key], str(key), lw=lw)
            handle = handle or line
        if handle is not None:  # no line (every value NaN: no test image) → no legend entry
            n = int(layer_rows.loc[layer_rows[column] == key, "n_concepts"].max())
            handles.append(handle)
            labels.append(f"{'average' if key == 'all' else key} (n = {n})")
    for axis in (ax, bx):
        axis.axhline(CHANCE, color="0.4", ls="--", lw=0.9, zorder=1)
        axis.set_ylim(-0.02, 1.02)
    ax.set_ylabel("1 vs. 2 accuracy")
    bx.set_title("block average", fontsize=9)
    ax.set_title("per layer", fontsize=9)
    fig.suptitle(title, fontsize=10)
    _marker_legend(bx, handles, labels, undefined=undefined, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save_figure(fig, out)


def plot_mistake_cosines(mistakes: pd.DataFrame, out: Sequence[str | Path]) -> None:
    """Cosine similarity of the word vectors of each mistake's true and predicted class, per network."""
    plt = _pyplot()
    keys = list(mistakes.groupby(["model", "ds_model"], sort=False).groups) if len(mistakes) else []
    fig, ax = plt.subplots(figsize=(max(3.5, 1.3 * len(keys) + 1.5), 3.6))
    data = [mistakes.loc[(mistakes["model"] == m) & (mistakes["ds_model"] == d), "cosine_true_predicted"].to_numpy()
            for m, d in keys]
    if keys:
        parts = ax.violinplot(data, showmedians=True, widths=0.8)
        for body in parts["bodies"]:
            body.set_alpha(0.35)
        rng = np.random.default_rng(0)
        for i, values in enumerate(data, start=1):
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=6, color="0.2", alpha=0.6, lw=0)
        ax.set_xticks(range(1, len(keys) + 1))
        ax.set_xticklabels([f"{m}\n{d}\n(n = {len(v)})" for (m, d), v in zip(keys, data)], fontsize=7)
    else:
        ax.text(0.5, 0.5, "no misclassified images", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("cosine(true, predicted) word vectors")
    ax.set_title("How close are the network's mistakes in word space?")
    save_figure(fig, out)


# --------------------------------------------------------------------------------------
# Training dynamics (2021 Figure 3, Appendix D)
# --------------------------------------------------------------------------------------


def plot_training(table: pd.DataFrame, out: Sequence[str | Path]) -> None:
    """Per run (rows; permuted-label runs last): train/test error over epochs, and 2 vs. 2
    (group mean, each layer) over epochs."""
    plt = _pyplot()
    runs = sorted(table["run"].unique(), key=lambda r: (bool(table.loc[table["run"] == r, "permuted_labels"].iloc[0]), r))
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(len(runs), 2, figsize=(10, 3.0 * len(runs)), squeeze=False)
    means = table[(table["statistic"] == "2v2") & (table["group"] == "mean")]["value"]
    ylim = (min(0.45, float(means.min()) - 0.03), min(1.0, float(means.max()) + 0.03)) if len(means) else (0, 1)
    for row, run in zip(axes, runs):
        t = table[table["run"] == run]
        permuted = bool(t["permuted_labels"].iloc[0])
        ex, ax = row
        curve = t.drop_duplicates("epoch").sort_values("epoch")
        ex.plot(curve["epoch"], curve["train_error"], "-o", ms=3, label="train error", color="#1f77b4")
        ex.plot(curve["epoch"], curve["test_error"], "-s", ms=3, label="test error", color="#d62728")
        ex.set_ylim(-0.02, 1.02)
        ex.set_xlabel("epoch")
        ex.set_ylabel("error")
        ex.set_title(f"{run}{' (permuted labels)' if permuted else ''}: error", fontsize=9)
        ex.legend(frameon=False, fontsize=7)
        m = t[(t["statistic"] == "2v2") & (t["group"] == "mean")]
        keys = list(m.groupby(["ds_model", "image_set"], sort=False).groups)
        layers = m.sort_values("layer_index")["layer"].drop_duplicates().tolist()
        cmap = plt.get_cmap("viridis")
        for k, (ds, iset) in enumerate(keys):
            for j, layer in enumerate(layers):
                s = m[(m["layer"] == layer) & (m["ds_model"] == ds) & (m["image_set"] == iset)].sort_values("epoch")
                colour = cmap(0.85 * j / max(1, len(layers) - 1))  # viridis without its pale yellow end
                ax.plot(s["epoch"], s["value"], ["-", "--", ":", "-."][k % 4], color=colour, lw=1.3,
                        label=layer if k == 0 else None)
                sig = s["significant"].to_numpy(bool)
                ax.scatter(s["epoch"][sig], s["value"][sig], color=colour, s=14, zorder=3)
        ax.axhline(CHANCE, color="0.4", ls="--", lw=0.9)
        ax.set_ylim(*ylim)  # the same scale for every run, so the permuted run compares at a glance
        for axis in (ex, ax):
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("2 vs. 2 accuracy")
        ds_names = ", ".join(dict.fromkeys(d for d, _ in keys))
        ax.set_title(f"2 vs. 2 per layer ({ds_names}; dots: significant after BHY)", fontsize=9)
        first = ax.legend(frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="layer",
                          title_fontsize=7)
        if len(keys) > 1:  # say which line style is which image set (and DS model)
            from matplotlib.lines import Line2D

            ax.add_artist(first)
            styles = [Line2D([], [], color="0.3", ls=["-", "--", ":", "-."][k % 4]) for k in range(len(keys))]
            ax.legend(styles, [f"{s}" if len({d for d, _ in keys}) == 1 else f"{d} · {s}" for d, s in keys],
                      frameon=False, fontsize=6, loc="lower left", bbox_to_anchor=(1.0, 0.0), title="image set",
                      title_fontsize=7)
    fig.tight_layout()
    save_figure(fig, out)


# --------------------------------------------------------------------------------------
# Per-concept view
# --------------------------------------------------------------------------------------


def plot_concepts(per_concept: pd.DataFrame, out: Sequence[str | Path], names: dict[str, str] | None = None,
                  title: str = "", n_show: int = 15) -> None:
    """Best and worst represented concepts at one layer: each concept's 2 vs. 2 accuracy over
    the pairs it takes part in (mean ± s.d. over image groups)."""
    plt = _pyplot()
    names = names or {}
    t = per_concept.sort_values("accuracy", ascending=False).reset_index(drop=True)
    if len(t) > 2 * n_show:
        t = pd.concat([t.head(n_show), t.tail(n_show)], ignore_index=True)
        split = n_show
    else:
        split = None
    fig, ax = plt.subplots(figsize=(6.0, 0.22 * len(t) + 1.3))
    y = np.arange(len(t))[::-1]
    colours = np.where(t["accuracy"] >= CHANCE, "#2166ac", "#b2182b")
    ax.barh(y, t["accuracy"], xerr=t.get("accuracy_sd"), color=colours, alpha=0.85, height=0.75,
            error_kw={"lw": 0.7, "capsize": 1.5})
    ax.set_yticks(y)
    ax.set_yticklabels([_short(names.get(c, c), 28) for c in t["concept"]], fontsize=7)
    ax.axvline(CHANCE, color="0.4", ls="--", lw=0.9)
    if split is not None:
        ax.axhline(y[split - 1] - 0.5, color="0.2", lw=0.6, ls=":")
        ax.text(1.0, y[split - 1] - 0.5, f"  … {len(per_concept) - 2 * n_show} more", va="center", fontsize=7,
                transform=ax.get_yaxis_transform())
    ax.set_xlim(0, 1)
    ax.set_xlabel("2 vs. 2 accuracy of the pairs containing the concept")
    ax.set_title(title, fontsize=9)
    save_figure(fig, out)


# --------------------------------------------------------------------------------------
# Reading tables for figures
# --------------------------------------------------------------------------------------


def read_tables(paths: Sequence[str | Path]) -> pd.DataFrame:
    """The non-empty tables of ``paths`` concatenated (an empty frame if none)."""
    frames = [pd.read_parquet(p) for p in paths]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def plot_one_vs_two_tables(tables: Sequence[str | Path], out: Sequence[str | Path], title: str, by: str) -> None:
    """:func:`plot_one_vs_two` of the tables, or a figure saying there were no test images."""
    t = read_tables(tables)
    if t.empty or t["value"].notna().sum() == 0:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{title}\nno test images (see the logs)", ha="center", va="center")
        save_figure(fig, out)
        return
    plot_one_vs_two(t, out, title=title, by=by)


def summary_tables(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Compact versions of the main tables for the HTML report.

    ``tables`` maps names (concepts, two_vs_two, misclassified, adversarial, attacks) to
    the tidy tables; the same names are returned: the group-mean 2 vs. 2 rows, the 1 vs. 2
    rows, success counts and mean distances of the attacks per category, the concept
    matches (rounded to 4 digits).
    """
    keep = ["model", "ds_model", "image_set", "layer", "block", "value", "p", "q", "significant", "n_concepts"]
    out = {}
    if "two_vs_two" in tables:
        t = tables["two_vs_two"]
        out["two_vs_two"] = t[t["group"] == "mean"][keep].round(4)
    if "misclassified" in tables:
        out["misclassified"] = tables["misclassified"][keep[:4] + ["statistic"] + keep[4:]].round(4)
    if "adversarial" in tables:
        out["adversarial"] = tables["adversarial"][keep[:4] + ["statistic", "group"] + keep[4:]].round(4)
    if "attacks" in tables:
        t = tables["attacks"]
        out["attacks"] = (t.groupby(["model", "image_set", "category_rank", "category"], sort=True)
                          .agg(attacks=("attack", "size"), succeeded=("success", "sum"),
                               mean_target_correlation=("target_correlation", "mean"), mean_linf=("linf", "mean"),
                               mean_l2=("l2", "mean"))
                          .reset_index().drop(columns="category_rank").round(4))
    if "concepts" in tables:
        c = tables["concepts"]
        out["concepts"] = c.assign(unmatched=[", ".join(map(str, u)) for u in c["unmatched"]])
    return out
