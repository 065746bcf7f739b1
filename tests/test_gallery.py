"""wordlens.gallery: every figure writes a valid image for grey and RGB inputs and for
the edge cases (one image, NaN scores, empty inputs); grey images are drawn on a fixed
black-to-white scale; a failed save leaves no file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wordlens import gallery as G

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(path, min_side=150, max_side=6000):
    """A non-empty PNG that matplotlib reads back, with a plausible size; its H × W."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 2_000
    img = imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    h, w = img.shape[:2]
    assert min_side <= h <= max_side and min_side <= w <= max_side, (h, w)
    assert img[..., :3].std() > 0.01  # something is drawn
    assert not list(path.parent.glob(f".{path.name}.tmp-*"))  # written atomically, nothing left behind
    return h, w


def _grey(n, h=28, w=28, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = np.stack([0.5 + 0.5 * np.sin((xx * np.cos(i) + yy * np.sin(i)) / 3.0) for i in range(n)])[:, None]
    return np.clip(stripes + rng.normal(0, 0.05, (n, 1, h, w)), 0, 1)


def _rgb(n, h=32, w=32, seed=0):
    x = np.random.default_rng(seed).uniform(0, 0.4, (n, 3, h, w))
    x[:, 0, : h // 2] += 0.5
    x[:, 2, h // 2:] += 0.5
    return np.clip(x, 0, 1)


IMAGES = {"grey": _grey, "rgb": _rgb}


@pytest.fixture
def captured(monkeypatch):
    """The figures the gallery saves (still written), to inspect their artists."""
    figs = []
    real = G.save_figure

    def keep(fig, paths):
        figs.append(fig)
        fig.canvas.draw()  # texts laid out while the figure is open
        real(fig, paths)

    monkeypatch.setattr(G, "save_figure", keep)
    return figs


def _texts(fig):
    out = []
    for ax in fig.get_axes():
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()] + [t.get_text() for t in ax.texts]
    return [t for t in out if t]


def _image_artists(fig):
    return [im for ax in fig.get_axes() for im in ax.get_images()]


# --------------------------------------------------------------------------------------
# Feature maps
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["grey", "rgb"])
@pytest.mark.parametrize("shared", [True, False])
def test_feature_map_grid(tmp_path, kind, shared):
    maps = np.random.default_rng(1).gamma(2, 1, (7, 6, 6))
    maps[0, 0, 0] = np.nan  # drawn as 0
    out = tmp_path / "f.png"
    G.feature_map_grid(IMAGES[kind](1)[0], maps, [0, 3, 5, 8, 9, 11, 60], out, title="m, layer", shared_scale=shared)
    _png(out)


def test_feature_map_grid_one_map_and_errors(tmp_path):
    out = tmp_path / "one.png"
    G.feature_map_grid(_grey(1)[0], np.ones((5, 5)), [2], out)  # 2-D: one map, constant
    _png(out, min_side=100)
    with pytest.raises(ValueError, match="2 channel numbers for 1 maps"):
        G.feature_map_grid(_grey(1)[0], np.ones((1, 5, 5)), [1, 2], tmp_path / "x.png")
    with pytest.raises(ValueError, match="no maps"):
        G.feature_map_grid(_grey(1)[0], np.ones((0, 5, 5)), [], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------------------
# Attribution panels
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["grey", "rgb"])
def test_attribution_panel(tmp_path, kind, captured):
    imgs = IMAGES[kind](3)
    c = imgs.shape[1]
    rng = np.random.default_rng(2)
    maps = {"DeconvNet, ch 3": rng.normal(size=(3, c, *imgs.shape[2:])),
            "Grad-CAM": rng.uniform(size=(3, 4, 4)),
            "signed": rng.normal(size=(3, 7, 7)),
            "fooled image": imgs[:, :, ::-1]}
    maps["Grad-CAM"][0, 0, 0] = np.nan
    out = [tmp_path / "a.png", tmp_path / "a.pdf"]
    G.attribution_panel(imgs, maps, ["sneaker → predicted sandal", "b → c", "a long row label " * 3], out,
                        title="t", overlay=["Grad-CAM"], as_images=["fooled image"])
    _png(out[0])
    assert out[1].read_bytes()[:5] == b"%PDF-"
    texts = _texts(captured[0])
    assert "input" in texts and "Grad-CAM" in texts


def test_attribution_panel_one_image_and_errors(tmp_path):
    out = tmp_path / "one.png"
    G.attribution_panel(_grey(1)[0], {"cam": np.ones((1, 3, 3))}, ["only"], out, overlay=["cam"])
    _png(out, min_side=100)
    with pytest.raises(ValueError, match="1 labels for 2 images"):
        G.attribution_panel(_grey(2), {}, ["a"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="map 'cam'"):
        G.attribution_panel(_grey(2), {"cam": np.ones((3, 4, 4))}, ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="overlay"):
        G.attribution_panel(_grey(2), {"px": _grey(2)}, ["a", "b"], tmp_path / "x.png", overlay=["px"])
    with pytest.raises(ValueError, match="as_images"):
        G.attribution_panel(_grey(2), {"cam": np.ones((2, 4, 4))}, ["a", "b"], tmp_path / "x.png", as_images=["cam"])
    with pytest.raises(ValueError, match="no images"):
        G.attribution_panel(np.zeros((0, 1, 8, 8)), {}, [], tmp_path / "x.png")
    with pytest.raises(ValueError, match="C = 1 or 3"):
        G.attribution_panel(np.zeros((1, 2, 8, 8)), {}, ["two channels"], tmp_path / "x.png")
    assert not list(tmp_path.glob("x*")) and not list(tmp_path.glob(".x*"))


# --------------------------------------------------------------------------------------
# Image grids
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["grey", "rgb"])
def test_image_grid(tmp_path, kind, captured):
    imgs = IMAGES[kind](12).reshape(3, 4, -1, *IMAGES[kind](1).shape[2:])
    scores = np.random.default_rng(3).uniform(size=(3, 4))
    scores[1, 2] = np.nan
    out = tmp_path / "g.png"
    G.image_grid(imgs, ["T-shirt/top", "trouser", "ankle boot"], ["noise 1", "noise 2", "real image", "softmax"],
                 out, title="t", scores=scores, score_label="p(class)")
    _png(out)
    texts = _texts(captured[0])
    assert "—" in texts and "T-shirt/top" in texts  # NaN score printed as a dash


def test_image_grid_blocks_one_image_and_errors(tmp_path):
    rows = [f"class {i}" for i in range(7)]
    out = tmp_path / "blocks.png"
    G.image_grid(_grey(7).reshape(7, 1, 1, 28, 28), rows, ["epoch 1"], out, max_rows=3)  # 3 blocks
    h, w = _png(out)
    assert w > h  # side-by-side blocks
    G.image_grid(_rgb(1)[None], ["a"], ["b"], tmp_path / "one.png")
    _png(tmp_path / "one.png", min_side=100)
    with pytest.raises(ValueError, match="R × K × C × H × W"):
        G.image_grid(_grey(2), ["a", "b"], ["c"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="1 row labels"):
        G.image_grid(_grey(2).reshape(2, 1, 1, 28, 28), ["a"], ["c"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="scores must be 2 × 1"):
        G.image_grid(_grey(2).reshape(2, 1, 1, 28, 28), ["a", "b"], ["c"], tmp_path / "x.png", scores=np.ones(2))
    with pytest.raises(ValueError, match="empty"):
        G.image_grid(np.zeros((0, 2, 1, 8, 8)), [], ["a", "b"], tmp_path / "x.png")


# --------------------------------------------------------------------------------------
# A channel's examples
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["grey", "rgb"])
def test_channel_examples(tmp_path, kind, captured):
    scores = np.random.default_rng(4).normal(size=300)
    top = np.argsort(-scores)[:6]
    all_scores = np.append(scores, [np.nan, np.inf])
    out = tmp_path / "c.png"
    G.channel_examples(IMAGES[kind](6), scores[top], IMAGES[kind](1)[0], all_scores, out, title="ch 3")
    _png(out)
    fig = captured[0]
    assert any("300 dataset images" in t.get_text() and "2 non-finite" in t.get_text() for t in fig.texts
               + [s._suptitle for s in fig.subfigs if s._suptitle is not None])


def test_channel_examples_edge_cases(tmp_path, captured):
    G.channel_examples(_grey(1)[0], [np.nan], None, [1.0, 2.0, np.nan], tmp_path / "one.png")  # one image
    _png(tmp_path / "one.png")
    assert "—" in _texts(captured[-1])
    G.channel_examples(np.zeros((0, 1, 28, 28)), [], None, [], tmp_path / "none.png")  # nothing at all
    _png(tmp_path / "none.png")
    with pytest.raises(ValueError, match="2 scores for 1 top images"):
        G.channel_examples(_grey(1), [1.0, 2.0], None, [1.0], tmp_path / "x.png")


def _panel(c, k, kind="grey", am=True, n=200, seed=0):
    s = np.random.default_rng(seed + c).gamma(2, 1, n)
    top = np.argsort(-s)[:k]
    return {"channel": c, "top_images": IMAGES[kind](k, seed=c), "top_scores": s[top],
            "am_image": IMAGES[kind](1, seed=99)[0] if am else None, "all_scores": s,
            "top_labels": [f"class {i}" for i in top]}


@pytest.mark.parametrize("kind", ["grey", "rgb"])
def test_channel_examples_grid(tmp_path, kind, captured):
    panels = [_panel(c, 5, kind) for c in (3, 17, 42)]
    out = [tmp_path / "grid.png", str(tmp_path / "grid.pdf")]
    G.channel_examples_grid(panels, out, title="model, layer")
    h, w = _png(out[0])
    assert w > h
    assert (tmp_path / "grid.pdf").read_bytes()[:5] == b"%PDF-"
    fig = captured[0]
    texts = _texts(fig)
    assert texts.count("activation max.") == 3  # the AM image first in every row
    assert {"ch 3", "ch 17", "ch 42"} <= set(texts)
    for p in panels:
        assert set(p["top_labels"]) <= set(texts)
    # per row: AM + 5 top images; the images keep the [0, 1] range; grey ones are grey
    images = _image_artists(fig)
    assert len(images) == 3 * 6
    for im in images:
        assert im.get_clim() == (0, 1)
        if kind == "grey":
            assert im.get_array().ndim == 2 and im.get_cmap().name == "gray"
        else:
            assert im.get_array().shape[-1] == 3


def test_channel_examples_grid_uneven_nan_and_missing(tmp_path, captured):
    full = _panel(1, 4, "rgb")
    short = _panel(9, 2, "rgb", am=False)  # fewer images than the others, no AM image
    short["top_scores"] = np.array([np.nan, 0.5])
    short["all_scores"] = np.append(short["all_scores"], [np.nan, -np.inf])
    empty = {"channel": 12, "top_images": np.zeros((0, 3, 32, 32)), "top_scores": [], "am_image": _rgb(1)[0],
             "all_scores": [], "top_labels": []}
    nolabels = _panel(20, 3, "grey")  # grey and RGB rows in one figure, labels optional
    del nolabels["top_labels"]
    out = tmp_path / "uneven.png"
    G.channel_examples_grid([full, short, empty, nolabels], out)
    _png(out)
    texts = _texts(captured[0])
    assert "—" in texts  # NaN top score
    assert any(t.startswith("200 finite of 202 images") for t in texts)  # non-finite left out, counted
    assert "no activation-\nmaximization\nimage" in texts and "no dataset image" in texts
    assert "no finite score" in texts


def test_channel_examples_grid_one_image_and_tiny_scores(tmp_path):
    p = _panel(0, 1)
    p["top_images"] = p["top_images"][0]  # one C × H × W image
    p["all_scores"] = np.full(50, 1e-7)  # all equal
    p["top_scores"] = [1e-7]
    G.channel_examples_grid([p], tmp_path / "one.png")
    _png(tmp_path / "one.png")


def test_channel_examples_grid_no_panel_writes_a_message(tmp_path, captured):
    out = tmp_path / "empty.png"
    G.channel_examples_grid([], out, title="m, layer")
    _png(out, min_side=50)
    assert any("no channel to show" in t for t in _texts(captured[0]))


def test_channel_examples_grid_errors(tmp_path):
    p = _panel(0, 3)
    with pytest.raises(ValueError, match=r"panel 0 lacks \['all_scores'\]"):
        G.channel_examples_grid([{k: v for k, v in p.items() if k != "all_scores"}], tmp_path / "x.png")
    with pytest.raises(ValueError, match="channel 0: 2 labels for 3 top images"):
        G.channel_examples_grid([p | {"top_labels": ["a", "b"]}], tmp_path / "x.png")
    with pytest.raises(ValueError, match="channel 0: 2 scores for 3 top images"):
        G.channel_examples_grid([p | {"top_scores": [1.0, 2.0]}], tmp_path / "x.png")
    with pytest.raises(ValueError, match="C = 1 or 3"):
        G.channel_examples_grid([p | {"top_images": np.zeros((3, 2, 8, 8))}], tmp_path / "x.png")
    with pytest.raises(ValueError, match="am_image"):
        G.channel_examples_grid([p | {"am_image": np.zeros((8, 8))}], tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------------
# Out-of-sample predictions, fooling, messages
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [4, 30])
def test_prediction_heatmap(tmp_path, n_classes):
    rng = np.random.default_rng(5)
    ids = [f"n{i:08d}" for i in range(n_classes)]
    freq = pd.DataFrame(rng.dirichlet(np.ones(n_classes), 3), index=["fashion", "cifar", "noise"], columns=ids)
    freq.iloc[0, 0] = np.nan
    bias = pd.Series(rng.normal(size=n_classes), index=ids[::-1])  # reordered to the columns
    G.prediction_heatmap(freq, bias, {i: f"name {i}" for i in ids}, tmp_path / "h.png")
    _png(tmp_path / "h.png")
    G.prediction_heatmap(freq, None, None, tmp_path / "nobias.png", title="no bias")
    _png(tmp_path / "nobias.png")


def test_prediction_heatmap_one_cell_and_errors(tmp_path):
    G.prediction_heatmap(pd.DataFrame({"c0": [1.0]}, index=["noise"]), [0.3], ["only class"], tmp_path / "one.png")
    _png(tmp_path / "one.png", min_side=100)
    with pytest.raises(ValueError, match="no rows or no columns"):
        G.prediction_heatmap(pd.DataFrame(), None, None, tmp_path / "x.png")
    with pytest.raises(ValueError, match="2 bias values for 1 classes"):
        G.prediction_heatmap(pd.DataFrame({"c0": [1.0]}), [1.0, 2.0], None, tmp_path / "x.png")


def test_fooling_curve(tmp_path):
    rng = np.random.default_rng(6)
    f = pd.DataFrame({"image": np.repeat(range(5), 3), "lr": np.tile([0.01, 0.1, 1.0], 5),
                      "flip_step": [5, 1, 0, 50, 3, -1, 120, 10, 2, -1, 40, 4, 200, 20, 1], "steps": 200,
                      "target_confidence": rng.uniform(size=15)})
    G.fooling_curve(f, tmp_path / "f.png")  # log scale with a step-0 flip (symlog)
    _png(tmp_path / "f.png")
    never = f.assign(flip_step=-1, target_confidence=np.nan)
    G.fooling_curve(never, tmp_path / "never.png")  # nothing flips; NaN confidence
    _png(tmp_path / "never.png")
    G.fooling_curve(f.head(1), tmp_path / "one.png")
    _png(tmp_path / "one.png")
    with pytest.raises(ValueError, match="lacks columns"):
        G.fooling_curve(f.drop(columns=["steps"]), tmp_path / "x.png")


def test_message_figure(tmp_path, captured):
    out = [tmp_path / "m.png", tmp_path / "m.pdf"]
    G.message_figure(out, "model: no misclassified image in fashion")
    h, w = _png(out[0], min_side=50)
    assert w > 3 * h  # a small banner
    assert out[1].read_bytes()[:5] == b"%PDF-"
    assert _texts(captured[0]) == ["model: no misclassified image in fashion"]
    long = "fooling needs at least two classes with images " * 5
    G.message_figure(str(tmp_path / "long.png"), long + "\nsecond line")
    h2, _ = _png(tmp_path / "long.png", min_side=50)
    assert h2 > h  # wrapped onto more lines
    G.message_figure(tmp_path / "blank.png", "")
    _png(tmp_path / "blank.png", min_side=50)


def test_a_failed_save_leaves_no_file(tmp_path):
    with pytest.raises(ValueError):
        G.message_figure(tmp_path / "m.notaformat", "x")  # savefig refuses the format
    assert not list(tmp_path.iterdir())


def test_every_public_function_is_tested():
    tested = {"feature_map_grid", "attribution_panel", "image_grid", "channel_examples", "channel_examples_grid",
              "prediction_heatmap", "fooling_curve", "message_figure"}
    assert set(G.__all__) == tested
