"""wordlens.visualization, the branch's method choices, on hand-made cases."""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from wordlens import visualization as V
from wordlens.actmax import Term

IDS = ["c0", "c1", "c2", "c3"]


# --------------------------------------------------------------------------------------
# Classes, layers, channels
# --------------------------------------------------------------------------------------


def test_choose_classes():
    assert V.choose_classes(IDS, None, 2) == [0, 1]
    assert V.choose_classes(IDS, None, 10) == [0, 1, 2, 3]
    assert V.choose_classes(IDS, ["c3", "c1"], 1) == [3, 1]  # the order given; max_classes only for the default
    with pytest.raises(ValueError, match=r"unknown class id\(s\) \['dog'\].*4 in all"):
        V.choose_classes(IDS, ["c0", "dog"], 2)


SHAPES = {"conv1": (16, 14, 14), "pool": (16, 7, 7), "fc": (10,), "pixels": (1, 28, 28)}


def test_spatial_layers_and_check_layer():
    assert V.spatial_layers(["pixels", "conv1", "fc", "pool", "unknown"], SHAPES) == ["conv1", "pool"]
    V.check_layer("conv1", SHAPES, "Grad-CAM")
    with pytest.raises(ValueError, match=r"Grad-CAM: 'nope' is not one of the layers"):
        V.check_layer("nope", SHAPES, "Grad-CAM")
    with pytest.raises(ValueError, match=r"'fc' has output shape \(10,\), no spatial extent.*\['conv1', 'pool'\]"):
        V.check_layer("fc", SHAPES, "Grad-CAM")


def test_check_channels():
    V.check_channels(3, "conv1", (16, 14, 14))
    V.check_channels(100, "conv1", (16, 14, 14))  # a count: capped later
    V.check_channels(np.int64(3), "conv1", (16, 14, 14))
    V.check_channels([0, 15], "conv1", (16, 14, 14))
    with pytest.raises(ValueError, match=r"\[16, -1\] out of range for layer 'conv1', which has 16 channels"):
        V.check_channels([0, 16, -1], "conv1", (16, 14, 14))


# --------------------------------------------------------------------------------------
# Representative images
# --------------------------------------------------------------------------------------


def _manifest():
    # rows out of order on purpose; c1 has no image; c2's first row is 1
    return pd.DataFrame({"image_id": ["a", "b", "c", "d", "e"], "concept": ["c0", "c2", "c0", "c3", "c2"],
                         "class_index": [0, 2, 0, 3, 2], "group": [1, 0, 0, 0, 1], "row": [3, 1, 0, 2, 4]})


def test_representative_rows():
    reps = V.representative_rows(_manifest(), [2, 1, 0, 3], IDS)
    assert reps["image_id"].tolist() == ["b", "c", "d"]  # first row of each class, in the order asked; c1 skipped
    assert reps["concept"].tolist() == ["c2", "c0", "c3"] and reps["class_index"].tolist() == [2, 0, 3]
    assert reps["row"].tolist() == [1, 0, 2]
    assert V.representative_rows(_manifest(), [2, 1, 0, 3], IDS, n=2)["image_id"].tolist() == ["b", "c"]


def test_representative_rows_of_unsampled_classes_is_empty_with_the_columns():
    reps = V.representative_rows(_manifest(), [1], IDS)
    assert len(reps) == 0
    assert {"image_id", "concept", "class_index", "row"} <= set(reps.columns)
    assert len(reps.set_index("class_index")) == 0  # what fool_images does with it


# --------------------------------------------------------------------------------------
# Channel scores from the activation cache
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("block_rows", [1, 3, 256])
def test_channel_means_matches_numpy(tmp_path, block_rows):
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(7, 4, 3, 5)).astype(np.float32)  # n × C × H × W
    flat = acts.reshape(7, -1)
    expected = acts.astype(np.float64).mean(axis=(2, 3))
    np.testing.assert_allclose(V.channel_means(flat, (4, 3, 5), block_rows=block_rows), expected, rtol=1e-12)
    with h5py.File(tmp_path / "a.h5", "w") as f:  # the cache is an HDF5 dataset
        f["activations"] = flat
    with h5py.File(tmp_path / "a.h5", "r") as f:
        got = V.channel_means(f["activations"], (4, 3, 5), block_rows=block_rows)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got.dtype == np.float64 and got.shape == (7, 4)


def test_channel_means_of_a_flat_layer_and_errors():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(V.channel_means(x, (3,)), x)  # C units, no spatial extent
    assert V.channel_means(np.zeros((0, 12)), (3, 2, 2)).shape == (0, 3)
    with pytest.raises(ValueError, match=r"activation width 12 does not match the layer shape \(4, 2, 2\)"):
        V.channel_means(np.zeros((2, 12)), (4, 2, 2))
    with pytest.raises(ValueError, match="n_images × width"):
        V.channel_means(np.zeros(12), (3, 2, 2))


def test_pick_channels_by_variance_with_ties_and_nan():
    means = np.array([[0.0, 1.0, 5.0, 0.0, 2.0],
                      [0.0, 3.0, 5.0, 4.0, 0.0],
                      [0.0, 5.0, 5.0, 0.0, 4.0]])
    # variances: 0, 8/3, 0, 32/9, 8/3 → 3, then 1 and 4 tied (by index), then 0 and 2
    assert np.allclose(means.var(axis=0), [0, 8 / 3, 0, 32 / 9, 8 / 3])
    assert V.pick_channels(means, 3) == [3, 1, 4]
    assert V.pick_channels(means, 5) == [3, 1, 4, 0, 2]
    assert V.pick_channels(means, 50) == [3, 1, 4, 0, 2]  # capped at the layer's channels
    assert V.pick_channels(means, np.int64(1)) == [3]
    with_nan = means.copy()
    with_nan[0, 3] = np.nan
    assert V.pick_channels(with_nan, 5) == [1, 4, 0, 2, 3]  # NaN variance last


def test_pick_channels_explicit_list():
    means = np.zeros((2, 6))
    assert V.pick_channels(means, [5, 0, 2]) == [5, 0, 2]  # as given
    assert V.pick_channels(means, (np.int64(1),)) == [1]
    with pytest.raises(ValueError, match=r"channels \[6, -1\] out of range: the layer has 6 channels \(0 … 5\)"):
        V.pick_channels(means, [0, 6, -1])
    with pytest.raises(ValueError, match="at least 1"):
        V.pick_channels(means, 0)
    with pytest.raises(ValueError, match="n_images × C"):
        V.pick_channels(np.zeros(6), 2)


def test_top_examples_order_ties_nan_and_k():
    s = np.array([1.0, 3.0, 3.0, 2.0, np.nan, 3.0])
    assert V.top_examples(s, 4).tolist() == [1, 2, 5, 3]  # descending, ties by index
    assert V.top_examples(s, 10).tolist() == [1, 2, 5, 3, 0, 4]  # all; NaN last
    assert V.top_examples(s, 0).tolist() == []
    assert V.top_examples([0.5], 3).tolist() == [0]
    assert V.top_examples(np.array([]), 3).tolist() == []
    with pytest.raises(ValueError, match="at least 0"):
        V.top_examples(s, -1)
    with pytest.raises(ValueError, match="one-dimensional"):
        V.top_examples(np.zeros((2, 2)), 1)


# --------------------------------------------------------------------------------------
# Data statistics and noise
# --------------------------------------------------------------------------------------


def test_channel_stats_by_hand():
    x = np.zeros((2, 2, 1, 2))
    x[:, 0] = [[[0.0, 1.0]], [[1.0, 1.0]]]  # channel 0: 0, 1, 1, 1 → mean 0.75, std √(3/16)
    x[:, 1] = 0.5
    mean, std = V.channel_stats(x)
    assert mean == pytest.approx([0.75, 0.5]) and std == pytest.approx([np.sqrt(3 / 16), 0.0])
    assert isinstance(mean, list) and isinstance(std[0], float)
    m_t, s_t = V.channel_stats(torch.as_tensor(x, dtype=torch.float32))  # a tensor as well
    assert m_t == pytest.approx(mean) and s_t == pytest.approx(std)
    with pytest.raises(ValueError, match="at least one"):
        V.channel_stats(np.zeros((0, 3, 4, 4)))
    with pytest.raises(ValueError, match="N × C × H × W"):
        V.channel_stats(np.zeros((3, 4, 4)))


def test_noise_images_have_the_mean_and_std():
    x = V.noise_images(400, (2, 16, 16), [0.3, 0.6], [0.05, 0.1], seed=3)
    assert x.shape == (400, 2, 16, 16) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    mean, std = V.channel_stats(x)  # 102 400 values per channel, hardly any clipped
    assert mean == pytest.approx([0.3, 0.6], abs=2e-3) and std == pytest.approx([0.05, 0.1], rel=0.02)
    np.testing.assert_array_equal(x, V.noise_images(400, (2, 16, 16), [0.3, 0.6], [0.05, 0.1], seed=3))
    assert not np.array_equal(x, V.noise_images(400, (2, 16, 16), [0.3, 0.6], [0.05, 0.1], seed=4))
    # the same draw as default_rng(seed).normal, scaled, shifted and clipped
    ref = np.random.default_rng(3).normal(size=(400, 2, 16, 16)) * np.array([0.05, 0.1])[:, None, None] \
        + np.array([0.3, 0.6])[:, None, None]
    np.testing.assert_allclose(x, np.clip(ref, 0, 1).astype(np.float32))


def test_noise_images_clip_broadcast_and_errors():
    wide = V.noise_images(50, (1, 8, 8), [0.5], [2.0], seed=0)  # mostly clipped
    assert wide.min() == 0.0 and wide.max() == 1.0
    rgb = V.noise_images(3, (3, 4, 4), [0.5], [0.1], seed=0)  # one value for all channels
    assert rgb.shape == (3, 3, 4, 4)
    with pytest.raises(ValueError, match="3 mean values for 1 channels"):
        V.noise_images(2, (1, 4, 4), [0.1, 0.2, 0.3], [0.1], seed=0)
    with pytest.raises(ValueError, match="2 std values for 3 channels"):
        V.noise_images(2, (3, 4, 4), [0.5], [0.1, 0.2], seed=0)
    with pytest.raises(ValueError, match="C × H × W"):
        V.noise_images(2, (4, 4), [0.5], [0.1], seed=0)
    assert V.noise_images(0, (1, 4, 4), [0.5], [0.1], seed=0).shape == (0, 1, 4, 4)


# --------------------------------------------------------------------------------------
# Out-of-sample predictions
# --------------------------------------------------------------------------------------


def test_prediction_frequencies_sum_to_one_per_source():
    pred = {"fashion": np.array([0, 0, 1, 3]), "noise": [2, 2, 2], "cifar": np.array([], dtype=np.int64)}
    f = V.prediction_frequencies(pred, IDS)
    assert list(f.columns) == ["source", "class_index", "class_id", "count", "fraction"]
    assert len(f) == 3 * 4
    assert f.groupby("source", sort=False)["fraction"].sum().to_dict() == pytest.approx(
        {"fashion": 1.0, "noise": 1.0, "cifar": 0.0})
    fashion = f[f["source"] == "fashion"]
    assert fashion["count"].tolist() == [2, 1, 0, 1] and fashion["fraction"].tolist() == [0.5, 0.25, 0, 0.25]
    assert fashion["class_id"].tolist() == IDS and fashion["class_index"].tolist() == [0, 1, 2, 3]
    assert f.loc[f["source"] == "noise", "count"].tolist() == [0, 0, 3, 0]
    wide = f.pivot(index="source", columns="class_id", values="fraction")[IDS]  # as predict_noise does
    assert wide.loc["noise"].tolist() == [0, 0, 1, 0]


def test_prediction_frequencies_outside_the_class_list(caplog):
    with caplog.at_level(logging.WARNING, logger="wordlens.visualization"):
        f = V.prediction_frequencies({"s": [0, 5, 5, 1]}, ["a", "b"])
    assert f["count"].tolist() == [1, 1] and f["fraction"].tolist() == [0.25, 0.25]  # of all 4 images
    assert "2 of 4 predictions are outside the 2 classes" in caplog.text
    with pytest.raises(ValueError, match="negative class indices"):
        V.prediction_frequencies({"s": [0, -1]}, ["a", "b"])


def test_output_bias_of_the_final_linear_layer():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 3))
    b = V.output_bias(net)
    assert b.dtype == np.float64 and b.shape == (3,)
    np.testing.assert_array_equal(b, net[4].bias.detach().double().numpy())
    net[4].bias = None  # the last Linear decides, even where an earlier one has a bias
    assert V.output_bias(net) is None
    assert V.output_bias(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2, bias=False))) is None
    assert V.output_bias(nn.Sequential(nn.Conv2d(1, 2, 3))) is None  # no Linear at all


def test_output_bias_of_a_resnet_is_its_fc():
    import torchvision

    net = torchvision.models.resnet18(num_classes=7)
    np.testing.assert_array_equal(V.output_bias(net), net.fc.bias.detach().double().numpy())


# --------------------------------------------------------------------------------------
# Fooling pairs and activation-maximization runs
# --------------------------------------------------------------------------------------


def test_fooling_pairs():
    assert V.fooling_pairs([4, 1, 7]) == [(4, 1), (1, 7), (7, 4)]  # each to the next, the last to the first
    assert V.fooling_pairs([2, 5]) == [(2, 5), (5, 2)]
    assert V.fooling_pairs([3]) == [] and V.fooling_pairs([]) == []
    for s, t in V.fooling_pairs(range(6)):
        assert s != t


def test_class_objectives():
    labels, objectives, starts = V.class_objectives(7, 2)
    assert labels == ["logit, noise 1", "logit, noise 2", "logit, real image", "softmax, noise 1"]
    assert starts == ["noise 0", "noise 1", "image", "noise 0"]
    assert objectives == [[Term("logit", index=7)], [Term("logit", index=7)], [Term("logit", index=7)],
                          [Term("softmax", index=7)]]
    assert all(t.layer is None for o in objectives for t in o)  # they read the model output
    labels, objectives, starts = V.class_objectives(np.int64(0), 1)
    assert len(labels) == len(objectives) == len(starts) == 3 and isinstance(objectives[0][0].index, int)
    with pytest.raises(ValueError, match="at least one noise start"):
        V.class_objectives(0, 0)


def test_score_ranks_count_from_the_highest_with_ties_by_index_and_nan_last():
    from wordlens.visualization import score_ranks

    scores = np.array([0.5, 2.0, np.nan, 2.0, -1.0])
    # by hand: 2.0 (index 1) → 0, 2.0 (index 3) → 1, 0.5 → 2, -1.0 → 3, NaN → 4
    assert score_ranks(scores).tolist() == [2, 0, 4, 1, 3]


def test_fooling_panel_shows_the_smallest_learning_rate_that_flips_else_the_largest():
    from wordlens.visualization import fooling_shown

    assert fooling_shown([0.1, 0.001, 0.01], [3, -1, 20]) == 2  # 0.01 is the smallest that flips
    assert fooling_shown([0.001, 0.01, 0.1], [-1, -1, -1]) == 2  # none flips: the largest
    assert fooling_shown([0.001, 0.01], [0, 5]) == 0
