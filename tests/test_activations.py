"""Models, extraction to the HDF5 cache, predictions and correlation matrices."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import WNIDS

from wordlens import activations, images, models
from wordlens.activations import StaleCacheError, correlate_layer, extract_activations
from wordlens.images import ImageSource, ManifestImages, sample_manifest

SPEC = models.ModelSpec(name="r18", arch="resnet18", weights=None, num_classes=10,
                        preprocessing={"resize": 56, "crop": 48}, seed=3)
LAYERS = ["pixels", "layer1.0.relu", "layer1.0.relu_1", "layer2.0.add", "fc"]


@pytest.fixture
def extracted(imagenet_tree, tmp_path):
    source = ImageSource("val", "imagenet", str(imagenet_tree))
    manifest = sample_manifest(source, images_per_concept=4, seed=0)
    outputs = {layer: tmp_path / "acts" / f"{layer}.h5" for layer in LAYERS}
    summary = extract_activations(SPEC, source, manifest, outputs, tmp_path / "pred.parquet",
                                  class_ids=WNIDS, batch_size=5, device="cpu", progress=False)
    return source, manifest, outputs, summary, tmp_path / "pred.parquet"


def reference_forward(source, manifest):
    """Direct forward pass of a freshly built model, activations captured by module hooks."""
    model = models.build_model(SPEC)
    pre = models.resolve_preprocessing(SPEC)
    x = torch.stack([ManifestImages(manifest, source, pre.pixel_transform())[i] for i in range(len(manifest))])
    x = pre.normalize(x)
    seen: dict[str, list[torch.Tensor]] = {}

    def keep(name):
        def hook(_module, _inputs, output):
            seen.setdefault(name, []).append(output.detach().clone())
        return hook

    block1, block2 = model.layer1[0], model.layer2[0]
    block1.relu.register_forward_hook(keep("relu"))  # called twice: relu, relu_1
    block2.bn2.register_forward_hook(keep("bn2"))
    block2.downsample.register_forward_hook(keep("downsample"))
    with torch.no_grad():
        logits = model(x)
    return {
        "pixels": x,
        "layer1.0.relu": seen["relu"][0],
        "layer1.0.relu_1": seen["relu"][1],
        "layer2.0.add": seen["bn2"][0] + seen["downsample"][0],  # before the in-place ReLU
        "fc": logits,
    }


def test_stored_activations_equal_a_direct_forward_pass(extracted):
    source, manifest, outputs, summary, _ = extracted
    ref = reference_forward(source, manifest)
    for layer, path in outputs.items():
        with h5py.File(path, "r") as f:
            stored = f["activations"][:]
            assert stored.shape == (len(manifest), int(np.prod(ref[layer].shape[1:])))
            assert stored.dtype == np.float32
            assert [s.decode() for s in f["image_id"][:]] == manifest["image_id"].tolist()
        np.testing.assert_allclose(stored, ref[layer].reshape(len(manifest), -1).numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=layer)
    assert summary.layer_shapes["layer2.0.add"] == (128, 6, 6)
    assert summary.layer_shapes["pixels"] == (3, 48, 48)


def test_attributes_record_what_the_activations_depend_on(extracted):
    _, manifest, outputs, _, _ = extracted
    attrs = activations.read_activation_attrs(outputs["layer2.0.add"])
    assert attrs["model"] == "r18" and attrs["arch"] == "resnet18" and attrs["weights"] == ""
    assert attrs["layer"] == "layer2.0.add" and attrs["layer_shape"] == [128, 6, 6]
    assert attrs["input_shape"] == [3, 48, 48]
    assert attrs["manifest_hash"] == images.manifest_hash(manifest)
    assert '"crop": 48' in attrs["preprocessing"] and "torch" in attrs["versions"]
    activations.check_activation_file(outputs["fc"], manifest_hash=images.manifest_hash(manifest), layer="fc")
    with pytest.raises(StaleCacheError, match="manifest_hash"):
        activations.check_activation_file(outputs["fc"], manifest_hash="0" * 64)


def test_predictions_table(extracted):
    source, manifest, _, _, pred_path = extracted
    pred = pd.read_parquet(pred_path)
    logits = reference_forward(source, manifest)["fc"].numpy()
    assert pred["image_id"].tolist() == manifest["image_id"].tolist()
    np.testing.assert_array_equal(pred["pred_index"], logits.argmax(axis=1))
    np.testing.assert_allclose(np.stack(pred["logits"].to_numpy()), logits, rtol=1e-4, atol=1e-5)
    assert pred["pred_concept"].tolist() == [WNIDS[i] if i < len(WNIDS) else "" for i in logits.argmax(axis=1)]
    np.testing.assert_array_equal(pred["correct"].to_numpy(dtype=bool), logits.argmax(axis=1) == manifest["class_index"])
    assert ((pred["pred_prob"] > 0) & (pred["pred_prob"] <= 1)).all()


def test_correlation_from_hdf5_equals_numpy(extracted):
    _, manifest, outputs, _, _ = extracted
    with h5py.File(outputs["layer1.0.relu_1"], "r") as f:
        stored = f["activations"][:].astype(np.float64)
    for group in range(4):
        rows = images.group_rows(manifest, group)
        result = correlate_layer(outputs["layer1.0.relu_1"], manifest, group, block_size=1000)
        np.testing.assert_allclose(result.corr, np.corrcoef(stored[rows]), atol=1e-10)
        assert result.concepts.tolist() == WNIDS
        assert result.meta["layer"] == "layer1.0.relu_1" and result.meta["group"] == group


def test_correlation_round_trip_and_stale_manifest(extracted, tmp_path):
    _, manifest, outputs, _, _ = extracted
    result = correlate_layer(outputs["fc"], manifest, 0)
    result.save(tmp_path / "corr.npz")
    back = activations.LayerCorrelation.load(tmp_path / "corr.npz")
    np.testing.assert_array_equal(back.corr, result.corr)
    assert back.meta == result.meta
    other = manifest.copy()
    other.loc[0, "image_id"] = "something else"
    with pytest.raises(StaleCacheError, match="another manifest"):
        correlate_layer(outputs["fc"], other, 0)


def fake_layer(tmp_path, n_concepts=6, n_groups=2, features=200_000, constant_row=None):
    rows = []
    for g in range(n_groups):
        for c in range(n_concepts):
            rows.append((f"img{g}_{c}", "s", "imagefolder", "val", f"c{c}/{g}.png", -1, f"c{c}", c, g))
    manifest = pd.DataFrame(rows, columns=list(images.MANIFEST_COLUMNS[:-1]))
    manifest["row"] = np.arange(len(manifest))
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(len(manifest), features)) + rng.normal(size=(len(manifest), 1))).astype(np.float32)
    if constant_row is not None:
        X[constant_row] = 0.0
    path = tmp_path / "layer.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("activations", data=X, chunks=(n_concepts, min(features, 16384)))
        f.attrs["manifest_hash"] = images.manifest_hash(manifest)
        f.attrs["layer"] = "fake"
    return path, manifest, X


def test_correlation_memory_is_bounded_by_the_block(tmp_path, monkeypatch):
    path, manifest, X = fake_layer(tmp_path, features=200_000)
    widths = []
    original = activations.HDF5Rows.__getitem__

    def spy(self, key):
        block = original(self, key)
        widths.append(block.shape[1])
        return block

    monkeypatch.setattr(activations.HDF5Rows, "__getitem__", spy)
    result = correlate_layer(path, manifest, 1, block_size=16384)
    assert max(widths) == 16384 and len(widths) == 13  # 200,000 features in 13 blocks
    np.testing.assert_allclose(result.corr, np.corrcoef(X[6:12].astype(np.float64)), atol=1e-10)


def test_constant_concept_rows_are_reported_not_nan(tmp_path):
    path, manifest, _ = fake_layer(tmp_path, features=5000, constant_row=8)
    result = correlate_layer(path, manifest, 1)
    assert np.isfinite(result.corr).all()
    assert result.constant.tolist() == [False, False, True, False, False, False]
    assert result.meta["n_constant"] == 1


def test_float16_storage_with_compression(imagenet_tree, tmp_path):
    source = ImageSource("val", "imagenet", str(imagenet_tree))
    manifest = sample_manifest(source, images_per_concept=2)
    out = {"layer3.0.relu": tmp_path / "a.h5"}
    extract_activations(SPEC, source, manifest, out, storage_dtype="float16", compression="lzf",
                        device="cpu", progress=False)
    with h5py.File(out["layer3.0.relu"], "r") as f:
        assert f["activations"].dtype == np.float16 and f["activations"].compression == "lzf"
        assert f.attrs["storage_dtype"] == "float16"


def test_failed_extraction_leaves_no_output(imagenet_tree, tmp_path):
    source = ImageSource("val", "imagenet", str(imagenet_tree))
    manifest = sample_manifest(source, images_per_concept=3)
    (imagenet_tree / manifest["path"].iloc[-1]).write_bytes(b"corrupted after sampling")
    out_dir = tmp_path / "acts"
    outputs = {"fc": out_dir / "fc.h5", "pixels": out_dir / "pixels.h5"}
    with pytest.raises(ValueError, match="cannot read"):
        extract_activations(SPEC, source, manifest, outputs, tmp_path / "pred.parquet", batch_size=4,
                            device="cpu", progress=False)
    assert list(out_dir.iterdir()) == []  # neither outputs nor temporary files
    assert not (tmp_path / "pred.parquet").exists()


def test_unknown_layer_and_bad_settings(imagenet_tree, tmp_path):
    source = ImageSource("val", "imagenet", str(imagenet_tree))
    manifest = sample_manifest(source, images_per_concept=1)
    with pytest.raises(ValueError, match="not graph nodes"):
        extract_activations(SPEC, source, manifest, {"layer9": tmp_path / "x.h5"}, device="cpu")
    with pytest.raises(ValueError, match="storage dtype"):
        extract_activations(SPEC, source, manifest, {"fc": tmp_path / "x.h5"}, storage_dtype="int8", device="cpu")


# ---------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------


def test_checkpoint_loads_with_weights_only(tmp_path):
    model = models.build_model(SPEC)
    path = tmp_path / "r18.pt"
    torch.save(model.state_dict(), path)
    spec = models.ModelSpec(name="ck", arch="resnet18", num_classes=10, checkpoint=str(path), seed=99,
                            preprocessing=SPEC.preprocessing)
    loaded = models.build_model(spec)
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "wrapped.pt")
    assert set(models.load_checkpoint(tmp_path / "wrapped.pt")) == set(model.state_dict())


class NotATensor:
    pass


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path):
    torch.save({"weights": NotATensor()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="weights_only=True"):
        models.load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(FileNotFoundError):
        models.load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_for_another_architecture_is_a_clear_error(tmp_path):
    torch.save(models.build_model(SPEC).state_dict(), tmp_path / "r18.pt")
    spec = models.ModelSpec(name="x", arch="resnet34", num_classes=10, checkpoint=str(tmp_path / "r18.pt"))
    with pytest.raises(ValueError, match="does not fit architecture 'resnet34'"):
        models.build_model(spec)


def test_preprocessing_comes_from_the_weights_and_can_be_overridden():
    inc = models.resolve_preprocessing(models.ModelSpec(name="i", arch="inception_v3", weights="IMAGENET1K_V1"))
    assert (inc.resize, inc.crop) == (342, 299)
    vgg = models.resolve_preprocessing(models.ModelSpec(name="v", arch="vgg16", weights="IMAGENET1K_V1"))
    assert (vgg.resize, vgg.crop, vgg.mean) == (256, 224, models.IMAGENET_MEAN)
    small = models.resolve_preprocessing(models.ModelSpec(name="v", arch="vgg16", preprocessing={"crop": 32, "resize": None}))
    assert (small.resize, small.crop) == (None, 32)
    with pytest.raises(ValueError, match="unknown preprocessing key"):
        models.resolve_preprocessing(models.ModelSpec(name="v", arch="vgg16", preprocessing={"size": 3}))
    with pytest.raises(ValueError, match="unknown weights 'IMAGENET9K'"):
        models.resolve_preprocessing(models.ModelSpec(name="v", arch="vgg16", weights="IMAGENET9K"))
    with pytest.raises(ValueError, match="unknown architecture 'resnet5'; did you mean"):
        models.build_model(models.ModelSpec(name="x", arch="resnet5"))


def test_pretrained_weights_offline_give_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    spec = models.ModelSpec(name="r", arch="resnet18", weights="IMAGENET1K_V1")
    with pytest.raises(RuntimeError, match=r"resnet18-f37072fd\.pth.*copy it"):
        models.build_model(spec)


def test_model_spec_from_config_rejects_unknown_keys():
    spec = models.ModelSpec.from_config("m", {"arch": "vgg16", "weights": "IMAGENET1K_V1"})
    assert spec.arch == "vgg16" and spec.weights == "IMAGENET1K_V1"
    with pytest.raises(ValueError, match="unknown key"):
        models.ModelSpec.from_config("m", {"arch": "vgg16", "weight": "x"})
    with pytest.raises(ValueError, match="'arch' is required"):
        models.ModelSpec.from_config("m", {})


def test_background_writer_reports_write_errors():
    class Broken:
        def __setitem__(self, key, value):
            raise OSError("disk full")

    writer = activations._BackgroundWriter(per_batch=1)
    with pytest.raises(RuntimeError, match="disk full"):
        with writer:
            writer.put(Broken(), 0, 1, np.zeros((1, 3)))
            writer.finish()


def test_checkpoint_sha256_hashes_the_tensors_not_the_file(tmp_path):
    # torch.save stamps each file (archive name, serialization id): the bytes of two saves differ.
    state = models.build_model(SPEC).state_dict()
    torch.save(state, tmp_path / "a.pt")
    torch.save(state, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() != (tmp_path / "b.pt").read_bytes()

    def described(path):
        spec = models.ModelSpec(name="ck", arch="resnet18", num_classes=10, checkpoint=str(path))
        return activations._describe(spec)["checkpoint_sha256"]

    assert described(tmp_path / "a.pt") == described(tmp_path / "b.pt")
    assert len(described(tmp_path / "a.pt")) == 64
    assert models.checkpoint_sha256(tmp_path / "a.pt") == models.state_dict_sha256(state)
    changed = {k: v.clone() for k, v in state.items()}
    changed["fc.bias"][3] += 1e-3
    torch.save(changed, tmp_path / "c.pt")
    assert described(tmp_path / "c.pt") != described(tmp_path / "a.pt")
    reshaped = dict(state, **{"fc.bias": state["fc.bias"].reshape(2, 5)})
    assert models.state_dict_sha256(reshaped) != models.state_dict_sha256(state)
    as_double = dict(state, **{"fc.bias": state["fc.bias"].double()})
    assert models.state_dict_sha256(as_double) != models.state_dict_sha256(state)


def truncate_to_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_activation_file_is_a_clear_error(extracted):
    _, manifest, outputs, _, _ = extracted
    path = outputs["layer1.0.relu"]
    activations.read_activation_attrs(path)  # readable before
    truncate_to_half(path)
    pattern = rf"activation file {path} is unreadable \(truncated or corrupt\?\): remove it and rerun"
    with pytest.raises(activations.UnreadableActivationsError, match=pattern), activations.open_activations(path):
        pass
    with pytest.raises(ValueError, match=pattern):
        activations.read_activation_attrs(path)
    with pytest.raises(ValueError, match=pattern):
        activations.check_activation_file(path, layer="layer1.0.relu")
    with pytest.raises(ValueError, match=pattern):
        correlate_layer(path, manifest, 0)
    with pytest.raises(FileNotFoundError, match="missing.h5"), activations.open_activations(path.parent / "missing.h5"):
        pass


def test_open_activations_reads_a_good_file(tmp_path):
    path, _, X = fake_layer(tmp_path, features=3000)
    with activations.open_activations(path) as f:
        np.testing.assert_array_equal(f["activations"][2:4, :7], X[2:4, :7])
        assert f.attrs["layer"] == "fake"
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="not a wordlens activation file"), activations.open_activations(other):
        pass
