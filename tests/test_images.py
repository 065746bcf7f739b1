"""Image sets and sampling: the real loaders on fixtures generated in the real formats."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import CIFAR100_NAMES, WNIDS, make_cifar100, make_fashion_mnist, make_imagenet_tree

from wordlens import images
from wordlens.images import ImageSource, sample_manifest


def imagenet_source(root) -> ImageSource:
    return ImageSource(name="val", kind="imagenet", root=str(root), split="val")


def test_manifest_groups_hold_each_concept_once(imagenet_tree):
    m = sample_manifest(imagenet_source(imagenet_tree), images_per_concept=5, seed=1)
    assert len(m) == 5 * len(WNIDS)
    assert list(m.columns) == list(images.MANIFEST_COLUMNS)
    for g in range(5):
        part = m[m["group"] == g]
        assert part["concept"].tolist() == WNIDS  # each concept exactly once, in concept order
    # k distinct images per concept
    assert m.groupby("concept")["image_id"].nunique().eq(5).all()
    assert m["row"].tolist() == list(range(len(m)))
    assert images.group_rows(m, 2) == slice(12, 18)
    assert m["class_index"].tolist() == [WNIDS.index(c) for c in m["concept"]]


def test_sampling_is_deterministic_and_seeded(imagenet_tree):
    src = imagenet_source(imagenet_tree)
    a = sample_manifest(src, images_per_concept=3, seed=4)
    b = sample_manifest(src, images_per_concept=3, seed=4)
    c = sample_manifest(src, images_per_concept=3, seed=5)
    assert a.equals(b)
    assert not a["image_id"].equals(c["image_id"])
    assert images.manifest_hash(a) == images.manifest_hash(b) != images.manifest_hash(c)


def test_concept_choice_independent_of_other_concepts(imagenet_tree):
    src = imagenet_source(imagenet_tree)
    full = sample_manifest(src, images_per_concept=3, seed=2)
    sub = sample_manifest(src, images_per_concept=3, seed=2, concepts=WNIDS[2:4])
    for wnid in WNIDS[2:4]:
        assert sorted(full.loc[full.concept == wnid, "image_id"]) == sorted(sub.loc[sub.concept == wnid, "image_id"])


def test_class_ids_give_model_class_indices(imagenet_tree):
    class_ids = ["n00000000"] + WNIDS[::-1]
    m = sample_manifest(imagenet_source(imagenet_tree), images_per_concept=2, class_ids=class_ids)
    assert m.loc[m.concept == WNIDS[0], "class_index"].unique().tolist() == [class_ids.index(WNIDS[0])]


def test_too_few_images_is_an_error_naming_the_class(imagenet_tree):
    with pytest.raises(ValueError, match=r"class 'n01440764' has 6 image\(s\), fewer than 7"):
        sample_manifest(imagenet_source(imagenet_tree), images_per_concept=7)


def test_too_few_images_can_be_skipped(imagenet_tree, caplog):
    for f in sorted((imagenet_tree / WNIDS[1]).iterdir())[:3]:
        f.unlink()
    m = sample_manifest(imagenet_source(imagenet_tree), images_per_concept=5, on_error="skip")
    assert WNIDS[1] not in set(m.concept) and len(m) == 5 * (len(WNIDS) - 1)
    assert "fewer than 5" in caplog.text


def test_unreadable_image_is_named_or_skipped(imagenet_tree):
    folder = imagenet_tree / WNIDS[0]
    for f in folder.iterdir():
        f.write_bytes(b"not a jpeg")
        break
    bad = next(iter(folder.iterdir()))
    with pytest.raises(ValueError, match="unreadable image .*" + WNIDS[0]):
        sample_manifest(imagenet_source(imagenet_tree), images_per_concept=6)
    m = sample_manifest(imagenet_source(imagenet_tree), images_per_concept=5, on_error="skip")
    assert str(bad.relative_to(imagenet_tree)) not in set(m["path"])
    assert (m.concept == WNIDS[0]).sum() == 5


def test_empty_folder_and_missing_concepts(imagenet_tree):
    (imagenet_tree / "n09999999").mkdir()
    with pytest.raises(ValueError, match="n09999999 holds no images"):
        sample_manifest(imagenet_source(imagenet_tree), images_per_concept=2)
    m = sample_manifest(imagenet_source(imagenet_tree), images_per_concept=2, on_error="skip")
    assert "n09999999" not in set(m.concept)
    (imagenet_tree / "n09999999").rmdir()
    with pytest.raises(ValueError, match="have no images"):
        sample_manifest(imagenet_source(imagenet_tree), images_per_concept=2, concepts=["n08888888"], on_error="raise")


def test_imagenet_requires_wnid_folders(tmp_path):
    make_imagenet_tree(tmp_path / "tree", ["cat", "dog"], per_class=2)
    with pytest.raises(ValueError, match="not wnids"):
        sample_manifest(ImageSource("x", "imagenet", str(tmp_path / "tree")), images_per_concept=1)
    m = sample_manifest(ImageSource("x", "imagefolder", str(tmp_path / "tree")), images_per_concept=2)
    assert sorted(set(m.concept)) == ["cat", "dog"]


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sample_manifest(ImageSource("x", "imagefolder", str(tmp_path / "nope")), images_per_concept=1)


def test_cifar100_pickles_through_the_real_loader(tmp_path):
    root = make_cifar100(tmp_path / "cifar", classes=[3, 7, 42], per_class=6)
    imgs, labels, names = images.read_cifar100(root, "test")
    assert imgs.shape == (18, 32, 32, 3) and imgs.dtype == np.uint8
    assert names == CIFAR100_NAMES
    # The channel-major CIFAR row layout becomes H × W × C.
    raw = pickle.load(open(root / "cifar-100-python" / "test", "rb"), encoding="bytes")[b"data"]
    np.testing.assert_array_equal(imgs[0, :, :, 1], raw[0, 1024:2048].reshape(32, 32))
    src = ImageSource("c", "cifar100", str(root), split="train")
    m = sample_manifest(src, images_per_concept=5)
    assert set(m.concept) == {"class03", "class07", "class42"}
    assert m["image_id"].str.startswith("train/").all()
    img = images.open_image(src, "", int(m["index"].iloc[0]))
    assert img.size == (32, 32) and img.mode == "RGB"


def test_cifar100_refuses_arbitrary_pickles(tmp_path):
    root = make_cifar100(tmp_path / "cifar", classes=[1], per_class=1)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(root / "cifar-100-python" / "test", "wb") as f:
        pickle.dump({b"data": Evil()}, f)
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        images.read_cifar100(root, "test")


@pytest.mark.parametrize("torchvision_layout", [True, False])
def test_fashion_mnist_idx_files(tmp_path, torchvision_layout):
    root = make_fashion_mnist(tmp_path / "fm", per_class=6, torchvision_layout=torchvision_layout)
    src = ImageSource("fm", "fashion_mnist", str(root), split="test")
    m = sample_manifest(src, images_per_concept=5, seed=3)
    assert sorted(set(m.concept)) == sorted(images.FASHION_MNIST_CLASSES)
    assert m.groupby("group")["concept"].nunique().eq(10).all()
    img = images.open_image(src, "", 0)
    assert img.size == (28, 28) and img.mode == "L"


def test_fashion_mnist_missing_files_say_where_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        images.read_fashion_mnist(tmp_path, "train")


def test_bad_source_settings():
    with pytest.raises(ValueError, match="kind"):
        ImageSource("x", "mnist", "/tmp")
    with pytest.raises(ValueError, match="split"):
        ImageSource("x", "cifar100", "/tmp", split="val")


def test_tensor_image_set(tmp_path):
    import torch

    from wordlens.images import ImageSource, ManifestImages, list_items, read_tensor_images

    images = torch.rand(4, 1, 8, 8)
    torch.save({"images": images}, tmp_path / "adv.pt")
    source = ImageSource("adv", "tensor", str(tmp_path / "adv.pt"), split="adversarial")
    manifest = pd.DataFrame({"path": ["", ""], "index": [3, 1]})
    ds = ManifestImages(manifest, source, transform=None)
    assert ds.pixel_shape == (1, 8, 8)
    assert torch.equal(ds[0], images[3]) and torch.equal(ds[1], images[1])  # no resizing or cropping
    with pytest.raises(ValueError, match="outside 0..3"):
        ManifestImages(pd.DataFrame({"path": [""], "index": [4]}), source, transform=None)
    with pytest.raises(ValueError, match="cannot be sampled"):
        list_items(source)
    torch.save({"pixels": images}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="'images' tensor"):
        read_tensor_images(tmp_path / "bad.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable torch tensor file"):
        read_tensor_images(tmp_path / "junk.pt")


@pytest.mark.parametrize("kind", ["imagefolder", "imagenet"])
def test_empty_class_folder_is_skipped_or_named(tmp_path, kind, caplog):
    """sampling.on_error: an empty class folder is skipped with a warning naming it, or an
    error naming the image set and the folder; it still counts as a class (ImageFolder order)."""
    from wordlens.concepts import class_ids

    wnids = ["n01440764", "n01443537", "n01484850", "n01491361"]
    root = make_imagenet_tree(tmp_path / kind, wnids, per_class=3)
    empty = root / "n01442222"  # sorts between the first two classes
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here\n")
    source = ImageSource(name="trees", kind=kind, root=str(root))
    ids = class_ids(source)  # what the workflow passes as class_ids
    if kind == "imagefolder":
        assert ids == sorted([*wnids, "n01442222"])  # the empty folder keeps its class index
    with caplog.at_level("WARNING", logger="wordlens.images"):
        m = sample_manifest(source, images_per_concept=2, seed=0, class_ids=ids, on_error="skip")
    assert sorted(set(m.concept)) == wnids and len(m) == 2 * len(wnids)
    assert f"class folder {empty} holds no images" in caplog.text and "skipped" in caplog.text
    index = dict(zip(m.concept, m.class_index))
    assert all(index[c] == ids.index(c) for c in wnids)
    with pytest.raises(ValueError, match=rf"image set 'trees': class folder {empty} holds no images"):
        sample_manifest(source, images_per_concept=2, seed=0, class_ids=ids, on_error="raise")
    # Naming the empty class explicitly: skipped with a warning, or an error naming it.
    m = sample_manifest(source, images_per_concept=2, concepts=["n01442222", wnids[0]], class_ids=ids,
                        on_error="skip")
    assert set(m.concept) == {wnids[0]}
