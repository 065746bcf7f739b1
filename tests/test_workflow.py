"""The Snakemake workflow, run by pytest through `python -m snakemake` on generated data.

One tiny run of every branch (2 vs. 2 on an ImageFolder tree with a random-init ResNet-18,
a FractalNet trained on Fashion-MNIST-format files, misclassified 1 vs. 2, training
curves) is shared by the module; its tables are checked against the library called
directly, and dry runs check what reruns after config changes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from reference import one_vs_two_loop
from workflow_data import paper_standin, tiny_workdir

from wordlens import stats
from wordlens.activations import LayerCorrelation
from wordlens.concepts import read_concept_table, word_similarity

REPO = Path(__file__).resolve().parents[1]


def snakemake(wd: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(wd),
           "--cores", "2", *args]
    return subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    """The "Job stats" table of a dry run."""
    counts = {}
    in_table = False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            in_table = True
            continue
        if in_table:
            m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if m and m.group(1) != "total":
                counts[m.group(1)] = int(m.group(2))
            elif line.strip().startswith("total"):
                break
    return counts


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    wd = tiny_workdir(tmp_path_factory.mktemp("wf"))
    proc = snakemake(wd)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    assert "wordlens results" in proc.stdout + proc.stderr
    return wd


def override(wd: Path, name: str, change) -> Path:
    cfg = yaml.safe_load((wd / "config.yaml").read_text())
    change(cfg)
    path = wd / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# ---------------------------------------------------------------------------------------
# The full run and its tables
# ---------------------------------------------------------------------------------------


def test_every_branch_produces_its_tables(tiny_run):
    tables = tiny_run / "results" / "tables"
    two = pd.read_parquet(tables / "two_vs_two.parquet")
    cols = ["model", "ds_model", "image_set", "layer", "layer_index", "group", "statistic", "value", "p", "q",
            "significant"]
    assert set(cols) <= set(two.columns)
    assert set(two["model"]) == {"r18", "frac"}
    assert set(two["group"]) == {"0", "1", "2", "mean"}
    assert two.loc[two["model"] == "r18", "layer"].unique().tolist() == ["pixels", "layer1.0.relu",
                                                                         "layer4.1.relu_1", "fc"]
    assert (two["n_permutations"] == 40).all()
    assert ((two["p"] >= 1 / 41) & (two["p"] <= 1)).all()
    mis = pd.read_parquet(tables / "misclassified.parquet")
    assert set(mis["statistic"]) == {"1v2", "1v2_block_mean"}
    mistakes = pd.read_parquet(tables / "mistakes.parquet")
    assert len(mistakes) > 0 and mistakes["cosine_true_predicted"].between(-1, 1).all()
    assert (mistakes["true"] != mistakes["predicted"]).all()
    training = pd.read_parquet(tables / "training.parquet")
    assert sorted(training["epoch"].unique()) == [0, 2, 4]
    assert training["test_error"].notna().all()
    assert set(training["model"]) == {"fm-epoch0000", "fm-epoch0002", "fm-epoch0004"}
    concepts = pd.read_parquet(tables / "concepts.parquet")
    assert concepts.set_index("image_set").loc["folders", "n_matched"] == 8


def test_two_vs_two_table_equals_the_library(tiny_run):
    wd = tiny_run
    table = pd.read_parquet(wd / "results/tables/two_vs_two/r18/folders/w2v.parquet")
    concepts = read_concept_table(wd / "results/concepts/folders/w2v.parquet")
    means, nulls = {}, {}
    for layer in ["pixels", "layer1.0.relu", "layer4.1.relu_1", "fc"]:
        accs, group_nulls = [], []
        for g in range(3):
            corr = LayerCorrelation.load(wd / f"results/correlations/r18/folders/{layer}/group{g}.npz")
            ids, B = word_similarity(concepts, list(corr.concepts))
            assert ids == list(corr.concepts)
            accs.append(stats.two_vs_two(corr.corr, B))
            group_nulls.append(stats.two_vs_two_null(corr.corr, B, 40, seed=0, device="cpu"))
        row = table[(table.layer == layer) & (table.group == "mean")].iloc[0]
        assert row.value == pytest.approx(np.mean(accs), abs=1e-12)
        null = np.mean(group_nulls, axis=0)
        assert row.p == pytest.approx(stats.permutation_pvalue(np.mean(accs), null))
        g0 = table[(table.layer == layer) & (table.group == "0")].iloc[0]
        assert g0.value == pytest.approx(accs[0], abs=1e-12)
        means[layer], nulls[layer] = np.mean(accs), null
    mean_rows = table[table.group == "mean"]
    fdr = stats.fdr_bhy(mean_rows["p"].to_numpy(), alpha=0.05)
    np.testing.assert_allclose(mean_rows["q"], fdr.q)
    np.testing.assert_array_equal(mean_rows["significant"], fdr.reject)


def test_correlation_files_equal_numpy_on_the_cache(tiny_run):
    wd = tiny_run
    manifest = pd.read_parquet(wd / "results/manifests/folders.parquet")
    with h5py.File(wd / "results/activations/r18/folders/layer4.1.relu_1.h5", "r") as f:
        X = f["activations"][:].astype(np.float64)
    rows = manifest.index[manifest.group == 1]
    corr = LayerCorrelation.load(wd / "results/correlations/r18/folders/layer4.1.relu_1/group1.npz")
    np.testing.assert_allclose(corr.corr, np.corrcoef(X[rows]), atol=1e-10)


def test_misclassified_table_equals_the_library(tiny_run):
    wd = tiny_run
    mistakes = pd.read_parquet(wd / "results/misclassified/frac/fm_test/w2v/mistakes.parquet")
    concepts = read_concept_table(wd / "results/concepts/fm_test/w2v.parquet")
    table = pd.read_parquet(wd / "results/tables/misclassified/frac/fm_test/w2v.parquet")
    layer = "blocks.1.pool"
    with h5py.File(wd / f"results/activations/frac/fm_test/{layer}.h5", "r") as f:
        X = f["activations"][:].astype(np.float64)
    ids, CD = word_similarity(concepts, sorted(set(concepts.loc[concepts.matched, "class_id"])))
    at = {c: i for i, c in enumerate(ids)}
    img = np.array([[np.corrcoef(X[m.row], X[r])[0, 1] for r in m.reference_rows] for m in mistakes.itertuples()])
    wt = np.array([[CD[at[m.true], at[c]] for c in m.references] for m in mistakes.itertuples()])
    wp = np.array([[CD[at[m.predicted], at[c]] for c in m.references] for m in mistakes.itertuples()])
    passed = stats.one_vs_two(img, wt, wp)
    row = table[(table.layer == layer) & (table.statistic == "1v2")].iloc[0]
    assert row.value == pytest.approx(passed.mean())
    null = stats.one_vs_two_null(img, wt, wp, 40, seed=0, device="cpu")
    assert row.p == pytest.approx(stats.permutation_pvalue(passed.mean(), null))
    # references never include the image's true or predicted class
    for m in mistakes.itertuples():
        assert m.true not in m.references and m.predicted not in m.references


def test_adversarial_attacks_are_counted_and_failures_discarded(tiny_run):
    wd = tiny_run
    attacks = pd.read_parquet(wd / "results/tables/adversarial_attacks.parquet")
    assert len(attacks) == 4 * 6 and attacks["source"].nunique() == 4
    assert (attacks.groupby("source")["category"].apply(list).map(len) == 6).all()
    assert (attacks["target"] != attacks["source"]).all()
    assert attacks["linf"].max() <= 0.3 + 1e-6
    assert (attacks["success"] == (attacks["pred_concept"] == attacks["target"])).all()
    assert (attacks["discarded"] == ~attacks["success"]).all()
    manifest = pd.read_parquet(wd / "results/manifests/fm_test.mim.frac.parquet")
    assert len(manifest) == int(attacks["success"].sum())  # failed attacks are not analysed
    import torch

    stored = torch.load(wd / "results/adversarial/frac/fm_test/images.pt", weights_only=True)["images"]
    assert stored.shape == (24, 1, 32, 32) and float(stored.min()) >= 0 and float(stored.max()) <= 1
    with h5py.File(wd / "results/activations/frac/fm_test.mim.frac/pixels.h5", "r") as f:
        pixels = f["activations"][:]
    expected = ((stored[manifest["index"].tolist()] - 0.5) / 0.5).reshape(len(manifest), -1).numpy()
    np.testing.assert_allclose(pixels, expected, atol=1e-6)  # the cache holds exactly the adversarial images
    grid = wd / "results/adversarial/frac/fm_test/grid.png"
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and grid.stat().st_size > 10_000


def test_adversarial_table_equals_the_library(tiny_run):
    wd = tiny_run
    tests = pd.read_parquet(wd / "results/adversarial/frac/fm_test/w2v/tests.parquet")
    concepts = read_concept_table(wd / "results/concepts/fm_test/w2v.parquet")
    table = pd.read_parquet(wd / "results/tables/adversarial/frac/fm_test/w2v.parquet")
    assert len(tests) > 0 and set(table["group"]) >= {"all", *tests["category"]}
    ids, CD = word_similarity(concepts, sorted(set(concepts.loc[concepts.matched, "class_id"])))
    at = {c: i for i, c in enumerate(ids)}
    for layer in ["pixels", "fc"]:
        with h5py.File(wd / f"results/activations/frac/fm_test.mim.frac/{layer}.h5", "r") as f:
            A = f["activations"][:].astype(np.float64)
        with h5py.File(wd / f"results/activations/frac/fm_test/{layer}.h5", "r") as f:
            X = f["activations"][:].astype(np.float64)
        img = np.array([[np.corrcoef(A[t.row], X[r])[0, 1] for r in t.reference_rows] for t in tests.itertuples()])
        wt = np.array([[CD[at[t.true], at[c]] for c in t.references] for t in tests.itertuples()])
        wp = np.array([[CD[at[t.predicted], at[c]] for c in t.references] for t in tests.itertuples()])
        passed = one_vs_two_loop(img, wt, wp)
        rows = table[(table.layer == layer) & (table.statistic == "1v2")].set_index("group")
        assert rows.at["all", "value"] == pytest.approx(passed.mean())
        null = stats.one_vs_two_null(img, wt, wp, 40, seed=0, device="cpu")
        assert rows.at["all", "p"] == pytest.approx(stats.permutation_pvalue(passed.mean(), null))
        for category, sub in tests.groupby("category"):
            mask = (tests["category"] == category).to_numpy()
            assert rows.at[category, "value"] == pytest.approx(passed[mask].mean())
            assert rows.at[category, "n_concepts"] == len(sub)
    for t in tests.itertuples():
        assert t.true not in t.references and t.predicted not in t.references


def test_visualization_branch_writes_its_figures_and_tables(tiny_run):
    vis = tiny_run / "results" / "visualization"
    pngs = [f"frac/fm_test/layers/{layer}/{fig}.png" for layer in ("blocks.0.pool", "blocks.1.pool")
            for fig in ("feature_maps", "projections", "channels")]
    pngs += ["frac/fm_test/classes.png", "frac/fm_test/fooling.png", "frac/fm_test/fooling_steps.png",
             "frac/fm_test/mistakes.png", "frac/fm_test/attacks.png", "frac/out_of_sample.png", "training/fm.png"]
    for name in pngs:
        png = vis / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000, name
    tables = tiny_run / "results" / "tables"
    fooling = pd.read_parquet(tables / "fooling.parquet")
    assert len(fooling) == 3 * 2  # 3 (source, target) pairs of the 3 classes × 2 learning rates
    assert set(fooling["lr"]) == {0.1, 1.0} and (fooling["steps"] == 10).all()
    assert (fooling["source_class"] != fooling["target_class"]).all()
    assert fooling["flip_step"].between(-1, 10).all()
    assert (fooling["fooled"] == (fooling["final_pred"] == fooling["target_index"])).all()
    assert fooling["fooled"].any() and (fooling.loc[fooling["fooled"], "flip_step"] >= 0).all()  # the trained model is fooled
    oos = pd.read_parquet(tables / "out_of_sample.parquet")
    assert set(oos["source"]) == {"fm_test", "noise"}
    assert np.allclose(oos.groupby("source")["fraction"].sum(), 1.0)
    assert oos.loc[oos["source"] == "noise", "count"].sum() == 10
    predictions = pd.read_parquet(tiny_run / "results/predictions/frac/fm_test.parquet")
    counts = oos[oos["source"] == "fm_test"].set_index("class_index")["count"]
    assert (counts == predictions["pred_index"].value_counts().reindex(counts.index, fill_value=0)).all()
    actmax = pd.read_parquet(tables / "actmax.parquet")
    assert sorted(actmax["class_index"].unique()) == [0, 1, 2]
    logit_runs = actmax[actmax["run"].str.startswith("logit")]
    assert (logit_runs["objective_end"] > logit_runs["objective_start"]).all()  # the ascent raised each logit
    through = pd.read_parquet(tables / "actmax_training.parquet")
    assert sorted(through["epoch"].unique()) == [0, 2, 4] and sorted(through["class_index"].unique()) == [0, 1, 2]
    assert through["similarity"].between(-1, 1).all()
    channels = pd.read_parquet(vis / "frac/fm_test/layers/blocks.0.pool/channels.parquet")
    with h5py.File(tiny_run / "results/activations/frac/fm_test/blocks.0.pool.h5", "r") as f:
        acts = f["activations"][:]
        shape = tuple(f.attrs["layer_shape"])
    means = acts.reshape(len(acts), shape[0], -1).mean(axis=2)
    for c, part in channels.groupby("channel"):
        assert np.allclose(part.sort_values("row")["score"], means[:, c], atol=1e-5)
        assert part.loc[part["rank"] == 0, "score"].item() == part["score"].max()


def test_clustering_branch_writes_trees_tables_and_figures(tiny_run):
    table = pd.read_parquet(tiny_run / "results/tables/clustering.parquet")
    assert set(table["reference"]) == {"w2v", "hierarchy"}  # Fashion-MNIST has no WordNet ids
    assert table["layer"].unique().tolist() == ["pixels", "blocks.0.pool", "blocks.1.pool", "fc"]
    assert set(table["statistic"]) == {"cophenetic", "fowlkes_mallows_k2", "fowlkes_mallows_k4"}
    assert ((table["p"] >= 1 / 41) & (table["p"] <= 1)).all() and (table["n_permutations"] == 40).all()
    assert (table["n_concepts"] == 10).all() and (table["q"] >= table["p"] - 1e-12).all()
    base = tiny_run / "results/clustering/frac/fm_test"
    for layer in ("pixels", "blocks.0.pool", "blocks.1.pool", "fc"):
        assert (base / layer / "tree.nwk").read_text().rstrip().endswith(";")
    for name in ("dendrogram.png", "mst.png", "umap.png", "dendrogram_noise.png", "mst_noise.png"):
        png = base / "blocks.1.pool" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000, name
    assert "noise" in (base / "blocks.1.pool/mst_noise.svg").read_text()
    tree = json.loads((base / "trees/class1.json").read_text())
    assert tree["class_id"] == "Trouser" and len(tree["images"]) == 3  # k = 3 sampled images
    assert (base / "trees/class8.png").stat().st_size > 2_000
    png = tiny_run / "results/figures/clustering/frac.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_clustering_agreement_equals_a_literal_recomputation(tiny_run):
    """The cophenetic correlation of one layer with the word space, from the cache and the
    concept table alone: numpy means, scipy's WPGMA linkage and cophenet, numpy corrcoef."""
    from scipy.cluster.hierarchy import cophenet, linkage
    from scipy.spatial.distance import squareform

    man = pd.read_parquet(tiny_run / "results/manifests/fm_test.parquet")
    with h5py.File(tiny_run / "results/activations/frac/fm_test/blocks.0.pool.h5", "r") as f:
        acts = f["activations"][:].astype(np.float64)
    concepts = read_concept_table(tiny_run / "results/concepts/fm_test/w2v.parquet")
    ids = concepts.sort_values("class_index")["class_id"].tolist()

    def wpgma(X):
        Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
        D = 0.5 * (1 - Xn @ Xn.T)
        np.fill_diagonal(D, 0)
        return cophenet(linkage(squareform(D, checks=False), method="weighted"))

    layer = np.stack([acts[man.loc[man["concept"] == c, "row"].to_numpy()].mean(axis=0) for c in ids])
    words = np.stack([concepts.set_index("class_id").at[c, "vector"] for c in ids]).astype(np.float64)
    expected = np.corrcoef(wpgma(layer), wpgma(words))[0, 1]
    table = pd.read_parquet(tiny_run / "results/tables/clustering.parquet")
    got = table.query("reference == 'w2v' and layer == 'blocks.0.pool' and statistic == 'cophenetic'")["value"]
    assert np.isclose(got.item(), expected, atol=1e-9)


def test_every_figure_is_drawn(tiny_run):
    figs = tiny_run / "results" / "figures"
    expected = ["two_vs_two/r18", "two_vs_two/frac", "misclassified/frac", "mistake_cosines", "training",
                "adversarial/frac/fm_test/w2v", "concepts/r18/folders/w2v", "concepts/frac/fm_test/w2v",
                "architecture/r18/folders/w2v", "architecture/frac/fm_test/w2v"]
    for stem in expected:
        png, pdf = figs / f"{stem}.png", figs / f"{stem}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < png.stat().st_size < 5_000_000, stem
        assert pdf.read_bytes()[:5] == b"%PDF-" and 5_000 < pdf.stat().st_size < 5_000_000, stem
    svg = (figs / "architecture/r18/folders/w2v.svg").read_text()
    assert svg.count('class="node analysed"') == 4  # pixels, layer1.0.relu, layer4.1.relu_1, fc
    report_csv = pd.read_csv(tiny_run / "results/report/two_vs_two.csv")
    assert set(report_csv["model"]) == {"r18", "frac"}


def test_report_builds(tiny_run):
    proc = snakemake(tiny_run, "--report", "report.html")
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (tiny_run / "report.html").read_text(errors="replace")
    assert len(html) > 100_000
    for name in ("two_vs_two", "training.png", "mistake_cosines", "grid.png", "w2v.svg", "Benjamini",
                 "40 permutations", "config.yaml", "feature_maps.png", "out_of_sample.png", "Grad-CAM",
                 "DeconvNet", "fooling_steps.png", "dendrogram.png", "mst_noise.png", "Fowlkes"):  # captions name the statistics and the config
        assert name in html, name


def test_rerun_has_nothing_to_do(tiny_run):
    proc = snakemake(tiny_run, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changed_images_rerun_the_sampling(tiny_run):
    image = sorted((tiny_run / "resources/folders/cat").iterdir())[0]
    original, stat = image.read_bytes(), image.stat()
    new_class = tiny_run / "resources/folders/zebra"
    try:
        image.write_bytes(sorted((tiny_run / "resources/folders/dog").iterdir())[0].read_bytes())  # replaced
        proc = snakemake(tiny_run, "-n")
        assert proc.returncode == 0, proc.stderr[-3000:]
        counts = job_counts(proc.stdout)
        assert counts["sample_images"] == 1 and "results/manifests/folders.parquet" in proc.stdout
        assert counts["extract_activations"] == 4 and "output: results/activations/frac" not in proc.stdout
        image.write_bytes(original)
        os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        new_class.mkdir()
        shutil.copy(image, new_class / image.name)  # a class folder added
        proc = snakemake(tiny_run, "-n")
        assert job_counts(proc.stdout).get("sample_images") == 1, proc.stdout[-2000:]
    finally:
        shutil.rmtree(new_class, ignore_errors=True)
        image.write_bytes(original)
        os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    proc = snakemake(tiny_run, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr  # restored: nothing reruns


def test_adding_a_layer_reruns_only_that_layer(tiny_run):
    cfg = override(tiny_run, "more_layers.yaml",
                   lambda c: c["models"]["r18"]["layers"].insert(2, "layer2.0.relu"))
    proc = snakemake(tiny_run, "-n", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert job_counts(proc.stdout) == {"extract_activations": 1, "correlate_layer": 1, "score_two_vs_two": 1,
                                       "permute_two_vs_two": 2, "gather_two_vs_two": 1, "concat_two_vs_two": 1,
                                       "plot_two_vs_two": 1, "plot_architecture": 1, "write_report_tables": 1,
                                       "all": 1}
    assert "layer2.0.relu" in proc.stdout


def test_adding_a_model_reruns_only_that_model(tiny_run):
    def add(c):
        c["models"]["r18b"] = {**c["models"]["r18"], "seed": 1}

    proc = snakemake(tiny_run, "-n", "--configfile", str(override(tiny_run, "more_models.yaml", add)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert job_counts(proc.stdout) == {"extract_activations": 4, "correlate_layer": 4, "score_two_vs_two": 4,
                                       "permute_two_vs_two": 8, "gather_two_vs_two": 1, "concat_two_vs_two": 1,
                                       "plot_two_vs_two": 1, "plot_architecture": 1, "plot_concepts": 1,
                                       "write_report_tables": 1, "all": 1}
    assert "r18b" in proc.stdout and "results/activations/r18/" not in proc.stdout


def test_adding_a_visualised_class_or_layer_reruns_only_its_jobs(tiny_run):
    proc = snakemake(tiny_run, "-n", "--configfile", str(override(
        tiny_run, "more_classes.yaml", lambda c: c["visualization"].update(max_classes=4))))
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    # the new class's activation maximization (final model and each checkpoint), the fooling
    # pairs (the last class is now pushed to the new one), and the plots and tables over classes
    assert counts == {"maximize_class": 1, "maximize_checkpoints": 1, "plot_maximized_classes": 1,
                      "plot_training_classes": 1, "fool_images": 1, "concat_actmax": 1, "concat_actmax_training": 1,
                      "concat_fooling": 1, "all": 1}
    outputs = re.findall(r"output: (\S+/class\d+\.npz)", proc.stdout)
    assert sorted(outputs) == ["results/visualization/frac/fm_test/classes/class3.npz",
                               "results/visualization/training/fm/class3.npz"]  # no other class reruns
    proc = snakemake(tiny_run, "-n", "--configfile", str(override(
        tiny_run, "more_visual_layers.yaml",
        lambda c: c["visualization"].update(layers=["blocks.0.pool", "blocks.1.pool", "blocks.1.fractal_join"]))))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert job_counts(proc.stdout) == {"extract_activations": 1, "visualize_layer": 1, "all": 1}
    assert "layers/blocks.1.fractal_join/" in proc.stdout


def test_adding_a_clustered_layer_or_ds_model_reruns_only_its_jobs(tiny_run):
    proc = snakemake(tiny_run, "-n", "--configfile", str(override(
        tiny_run, "more_cluster_layers.yaml",
        lambda c: c["clustering"].update(layers=["pixels", "preset:blocks", "blocks.1.fractal_join", "fc"]))))
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the new layer's extraction, vectors, and its scores and nulls against both references
    assert job_counts(proc.stdout) == {"extract_activations": 1, "cluster_layer": 1, "score_clustering": 2,
                                       "permute_clustering": 4, "gather_clustering": 2, "concat_clustering": 1,
                                       "plot_clustering": 1, "all": 1}

    def add(c):
        c["ds_models"]["glove"] = {"kind": "glove", "path": "resources/glove.txt"}
        c["clustering"]["ds_models"] = ["w2v", "glove"]

    proc = snakemake(tiny_run, "-n", "clustering", "--configfile", str(override(tiny_run, "more_ds_cl.yaml", add)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    # the new reference is built and scored against the existing vectors: nothing extracted or clustered again
    assert counts["build_reference"] == 1 and counts["score_clustering"] == 4 and counts["permute_clustering"] == 8
    assert "cluster_layer" not in counts and "extract_activations" not in counts


def test_raising_permutations_adds_only_new_chunks(tiny_run):
    proc = snakemake(tiny_run, "-n", "--configfile",
                     str(override(tiny_run, "more_perms.yaml", lambda c: c["stats"].update(n_permutations=60))))
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    # 20 (model, image set, layer) combinations get chunk 2; 4 layers' 1 vs. 2 nulls too; then the gathers.
    assert counts == {"permute_two_vs_two": 20, "permute_misclassified": 4, "permute_adversarial": 4, "gather_two_vs_two": 5,
                      "gather_misclassified": 1, "gather_adversarial": 1, "concat_two_vs_two": 1,
                      "concat_misclassified": 1, "concat_adversarial": 1, "gather_training": 1, "concat_training": 1,
                      "plot_two_vs_two": 2, "plot_architecture": 2, "plot_misclassified": 1,
                      "plot_adversarial": 1, "plot_training": 1, "write_report_tables": 1,
                      # the clustering nulls (4 layers × 2 references) follow stats.n_permutations too
                      "permute_clustering": 8, "gather_clustering": 2, "concat_clustering": 1, "plot_clustering": 1,
                      "all": 1}
    outputs = re.findall(r"output: (\S+/null/chunk\d+\.npz)", proc.stdout)
    assert len(outputs) == 36 and all(o.endswith("chunk2.npz") for o in outputs)  # no old chunk reruns


def test_adding_a_ds_model_extracts_nothing_again(tiny_run):
    def add(c):
        c["ds_models"]["glove"] = {"kind": "glove", "path": "resources/glove.txt"}

    proc = snakemake(tiny_run, "-n", "--configfile", str(override(tiny_run, "more_ds.yaml", add)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    assert "extract_activations" not in counts and "correlate_layer" not in counts and "train_model_fm" not in counts
    assert "attack_images" not in counts and "select_attacks" not in counts  # targets come from the first DS model
    assert counts["match_concepts"] == 2 and counts["score_two_vs_two"] == 20
    assert counts["select_adversarial"] == 1 and counts["gather_adversarial"] == 1


# ---------------------------------------------------------------------------------------
# Lint, config validation, shipped configs
# ---------------------------------------------------------------------------------------


def test_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


_R18 = {"arch": "resnet18", "num_classes": 10, "image_sets": ["fmnist_test"], "layers": ["layer1.0.relu", "fc"],
        "preprocessing": {"crop": 32, "resize": 32}}
_VIS = {"models": ["m"], "layers": ["layer1.0.relu"]}  # config.yaml's visualization.layers are FractalNet's
_CL = {"models": ["m"], "layers": ["layer1.0.relu", "fc"]}  # and so are its clustering.layers


@pytest.mark.parametrize(
    "change, message",
    [
        ({"stats": {"n_permutation": 10}}, "n_permutation"),
        ({"stats": {"alpha": 2}}, "alpha"),
        ({"models": {"m": {"arch": "resnet18", "image_sets": ["nowhere"], "layers": ["fc"]}}}, "nowhere"),
        ({"models": {"m": {"arch": "resnet18", "image_sets": ["fmnist_test"], "layers": ["layer9.relu"]}}},
         "layer9.relu"),
        ({"stats": {"n_permutations": 40.0}}, "stats.n_permutations must be an integer; got 40.0"),
        ({"sampling": {"images_per_concept": 3.0}}, "sampling.images_per_concept must be an integer"),
        ({"models": {"m": {"arch": "resnet18", "image_sets": ["fmnist_test"], "layers": ["fc"],
                           "preprocessing": {"crop": "32"}}}}, "models.m.preprocessing.crop"),
        ({"models": {"m": _R18}, "visualization": {**_VIS, "classes": ["Nope"]}}, "Nope"),
        ({"models": {"m": _R18}, "visualization": {**_VIS, "channels": [999]}}, "999"),
        ({"models": {"m": _R18}, "visualization": {**_VIS, "gradcam_layer": "fc"}}, "no spatial extent"),
        ({"models": {"m": _R18}, "visualization": {"models": ["m"], "layers": ["layer9.relu"]}}, "layer9.relu"),
        ({"models": {"m": _R18}, "clustering": {**_CL, "figure_layers": ["layer2.0.relu"]}},
         "clustering.figure_layers"),
        ({"models": {"m": _R18}, "clustering": {**_CL, "prediction_trees": {"classes": ["Nope"]}}}, "Nope"),
    ],
)
def test_bad_config_stops_the_run_naming_it(tmp_path, change, message):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(change))
    # the default config with the change on top (several --configfile files are merged in order)
    proc = snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "config.yaml"), str(bad))
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def test_default_config_dry_run(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    proc = snakemake(tmp_path, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    assert counts["fetch_fashion_mnist"] == 1 and counts["train_model_fmnist"] == 1
    assert counts["train_model_fmnist_permuted"] == 1 and counts["select_mistakes"] == 1
    assert counts["attack_images"] == 2 and counts["gather_attacks"] == 1 and counts["select_adversarial"] == 1
    # the shipped hierarchy file (data/…) is found from any working directory
    assert counts["build_reference"] == 2 and counts["maximize_class"] == 10 and counts["maximize_checkpoints"] == 10


@pytest.mark.parametrize("config", ["imagenet-paper.yaml", "cifar100-fractalnet.yaml"])
def test_shipped_paper_configs_dry_run_on_stand_in_data(tmp_path, config):
    wd = paper_standin(tmp_path)
    # As from the repository root, where the demo's config.yaml lies beside the Snakefile:
    # the paper config must be the whole configuration, not merged into the demo's.
    shutil.copy(REPO / "config.yaml", wd / "config.yaml")
    proc = snakemake(wd, "-n", "--configfile", str(REPO / "config" / config))
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    assert "fmnist" not in proc.stdout and "train_model_fmnist" not in counts
    if config.startswith("imagenet"):
        # 50 + 106 + 17 layers (with pixels) over the three networks, 4 permutation chunks each;
        # Inception-v3's 106 layers again for its adversarial images
        assert counts["extract_activations"] == 50 + 106 + 17 + 106
        assert counts["permute_two_vs_two"] == 4 * (50 + 106 + 17)
        assert counts["predict_classes"] == 3
        assert counts["attack_images"] == 10 and counts["permute_adversarial"] == 4 * 106
    else:
        assert counts["train_model_cifar100"] == 1 and counts["train_model_cifar100_permuted"] == 1
        # 81 checkpoints (epochs 0, 5, …, 400) × 7 layers × train and test images, for both runs
        assert counts["gather_training"] == 2
