"""Generated stand-in data and configs for the workflow tests (real formats throughout)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import yaml
from conftest import make_cifar100, make_fashion_mnist, make_imagenet_tree

from wordlens.concepts import class_list

REPO = Path(__file__).resolve().parents[1]
FOLDER_CLASSES = ["bee", "beetle", "bridge", "car", "cat", "dog", "apple", "tiger"]
FASHION_TERMS = ["T-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]


def write_word2vec_binary(path: Path, words: list[str], dim: int = 12, seed: int = 0) -> None:
    """A word2vec binary file (header, then word, space, float32 values, newline)."""
    rng = np.random.default_rng(seed)
    latent = {w: rng.normal(size=dim) for w in words}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(f"{len(words)} {dim}\n".encode())
        for w in words:
            f.write(w.encode() + b" " + struct.pack(f"<{dim}f", *latent[w]) + b"\n")


def write_glove(path: Path, words: list[str], dim: int = 8, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(w + " " + " ".join(f"{x:.6f}" for x in rng.normal(size=dim)) + "\n" for w in words))


def tiny_workdir(wd: Path, *, with_training: bool = True) -> Path:
    """A working directory with a tiny config covering every branch of the workflow."""
    make_imagenet_tree(wd / "resources" / "folders", FOLDER_CLASSES, per_class=3, size=(36, 36))
    make_fashion_mnist(wd / "resources" / "fashion-mnist", per_class=24)
    write_word2vec_binary(wd / "resources" / "vectors.bin", FOLDER_CLASSES + FASHION_TERMS)
    write_glove(wd / "resources" / "glove.txt", FOLDER_CLASSES[:6] + FASHION_TERMS)
    small = {"arch": "fractalnet", "num_classes": 10,
             "arch_kwargs": {"n_blocks": 2, "n_columns": 2, "channels": [8, 16], "dropout": [0.0, 0.1],
                             "in_channels": 1},
             "preprocessing": {"channels": 1, "crop": 32, "resize": None, "mean": [0.5], "std": [0.5]}}
    config = {
        "device": "cpu",
        "image_sets": {
            "folders": {"kind": "imagefolder", "root": "resources/folders", "split": "val"},
            "fm_test": {"kind": "fashion_mnist", "root": "resources/fashion-mnist", "split": "test",
                        "hierarchy": "resources/fm_hierarchy.tsv"},
            "fm_train": {"kind": "fashion_mnist", "root": "resources/fashion-mnist", "split": "train"},
        },
        "sampling": {"images_per_concept": 3, "seed": 0},
        "ds_models": {"w2v": {"kind": "word2vec", "path": "resources/vectors.bin"}},
        "models": {
            "r18": {"arch": "resnet18", "weights": None, "num_classes": 8, "image_sets": ["folders"],
                    "preprocessing": {"resize": 40, "crop": 32},
                    "layers": ["pixels", "layer1.0.relu", "layer4.1.relu_1", "fc"], "misclassified": False},
            "frac": {"trained": "fm", "image_sets": ["fm_test"], "layers": ["pixels", "preset:blocks", "fc"],
                     "misclassified": True, "adversarial": True},
        },
        "extraction": {"batch_size": 16},
        "stats": {"n_permutations": 40, "chunk_size": 20, "seed": 0, "alpha": 0.05},
        "misclassified": {"n_reference": 5, "seed": 0},
        "adversarial": {"n_sources": 4, "sources_per_job": 2, "iterations": 10, "epsilon": 0.3, "n_reference": 5,
                        "grid_sources": 3},
        "training": {
            "runs": {"fm": {"model": small, "train_set": "fm_train", "test_set": "fm_test", "epochs": 4,
                            "checkpoint_every": 2, "batch_size": 20, "lr": 0.05,
                            "image_sets": ["fm_test"]}},
            "layers": ["preset:paper"],
        },
        "clustering": {"models": ["frac"], "cuts": [2, 4], "noise_images": 10,
                       "prediction_trees": {"classes": ["Trouser", "Bag"]}},
        "visualization": {"models": ["frac"], "channels": 3, "max_classes": 3, "images": 3, "examples": 4,
                          "noise_images": 10, "mistakes": 4, "attacks": 2, "starts": 1,
                          # plain gradient ascent (the regularisers and transforms have unit tests)
                          "actmax": {"steps": 20, "lambda_alpha": 0, "lambda_tv": 0, "jitter": 0, "rotate": 0,
                                     "blur_sigma": 0},
                          "fooling": {"learning_rates": [0.1, 1.0], "steps": 10}},
    }
    shutil.copy(REPO / "data" / "fashion_mnist_hierarchy.tsv", wd / "resources" / "fm_hierarchy.tsv")
    if not with_training:
        del config["clustering"]
        del config["visualization"]
        del config["training"]
        del config["models"]["frac"]
        del config["adversarial"]
    (wd / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return wd


def paper_standin(wd: Path) -> Path:
    """Stand-in data at the paths the shipped paper configs expect."""
    wnids = class_list("imagenet")["class_id"].tolist()[:6]
    make_imagenet_tree(wd / "resources" / "imagenet" / "val", wnids, per_class=5, size=(40, 40))
    make_cifar100(wd / "resources" / "cifar100", classes=[0, 1, 2, 3, 4, 5], per_class=6)
    write_word2vec_binary(wd / "resources" / "GoogleNews-vectors-negative300.bin", ["tench", "goldfish", "apple"])
    return wd
