# What the workflow makes: the final tables and figures of each branch, the report's
# tables, and the summary printed after a successful run.


def two_vs_two_tables():
    return [f"results/tables/two_vs_two/{m}/{s}/{d}.parquet" for m, s, d in analyses()]


def misclassified_tables():
    return [f"results/tables/misclassified/{m}/{s}/{d}.parquet" for m, s, d in misclassified_analyses()]


def mistake_tables():
    return [f"results/misclassified/{m}/{s}/{d}/mistakes.parquet" for m, s, d in misclassified_analyses()]


def adversarial_tables():
    return [f"results/tables/adversarial/{m}/{s}/{d}.parquet" for m, s, d in adversarial_analyses()]


def attack_tables():
    return [f"results/tables/adversarial_attacks/{m}/{s}.parquet" for m, s in adversarial_pairs()]


def training_tables():
    return [f"results/tables/training/{run}.parquet" for run in RUNS]


def concept_summaries():
    used = {s for _, s, _ in analyses()} | {s for run in RUNS for s in training_image_sets(run)}
    return [f"results/concepts/{s}/{d}.summary.parquet" for s in sorted(used) for d in DS_MODELS]


def adversarial_outputs():
    if not adversarial_pairs():
        return []
    grids = [f"results/adversarial/{m}/{s}/grid.png" for m, s in adversarial_pairs()]
    return ["results/tables/adversarial.parquet", "results/tables/adversarial_attacks.parquet", *grids]


def visual_pairs():
    """(model, image set) pairs of the visualization branch."""
    return [(m, visual_image_set(m)) for m in visual_models()]


def fooling_tables():
    return [f"results/tables/fooling/{m}/{s}.parquet" for m, s in visual_pairs()]


def actmax_tables():
    return [f"results/tables/actmax/{m}/{s}.parquet" for m, s in visual_pairs()]


def out_of_sample_tables():
    return [f"results/tables/out_of_sample/{m}.parquet" for m in visual_models()]


def actmax_training_tables():
    return [f"results/tables/actmax_training/{run}.parquet" for run in visual_runs()]


def visualization_outputs():
    """Every figure and table of the visualization branch."""
    out = []
    for m, s in visual_pairs():
        base = f"results/visualization/{m}/{s}"
        for layer in visual_layers(m):
            out += [f"{base}/layers/{layer}/{f}" for f in ("feature_maps.png", "projections.png", "channels.png")]
        out += [f"{base}/classes.png", f"{base}/fooling.png", f"{base}/fooling_steps.png", f"{base}/mistakes.png",
                f"results/visualization/{m}/out_of_sample.png"]
        if MODELS[m].get("adversarial") and s in MODELS[m]["image_sets"]:
            out.append(f"{base}/attacks.png")
    out += [f"results/visualization/training/{run}.png" for run in visual_runs()]
    if visual_models():
        out += ["results/tables/fooling.parquet", "results/tables/out_of_sample.parquet",
                "results/tables/actmax.parquet"]
    if visual_runs():
        out.append("results/tables/actmax_training.parquet")
    return out


def clustering_tables():
    return [f"results/tables/clustering/{m}/{s}/{r}.parquet" for m, s, r in cluster_analyses()]


def clustering_outputs():
    """Every tree, table and figure of the clustering branch."""
    out = []
    for m in cluster_models():
        for s in MODELS[m]["image_sets"]:
            for layer in cluster_layers(m):
                out += [f"results/clustering/{m}/{s}/{layer}/tree.{ext}" for ext in ("nwk", "json")]
            for layer in cluster_figure_layers(m):
                out += [f"results/clustering/{m}/{s}/{layer}/{f}" for f in ("dendrogram.png", "mst.png", "umap.png")]
                if CLUSTERING["noise_category"]:
                    out += [f"results/clustering/{m}/{s}/{layer}/{f}" for f in ("dendrogram_noise.png", "mst_noise.png")]
            for r in cluster_references(s):
                out.append(f"results/clustering/references/{s}/{r}.nwk")
            out += [f"results/clustering/{m}/{s}/trees/class{c}.png" for c in tree_classes(s)]
        out.append(f"results/figures/clustering/{m}.png")
    if cluster_models():
        out.append("results/tables/clustering.parquet")
    return out


# The report's CSV tables and the tidy tables they are made from.
REPORT_TABLE_SOURCES = {
    "concepts": "results/tables/concepts.parquet",
    "two_vs_two": "results/tables/two_vs_two.parquet",
    "misclassified": "results/tables/misclassified.parquet",
    "adversarial": "results/tables/adversarial.parquet",
    "attacks": "results/tables/adversarial_attacks.parquet",
}


def report_tables():
    names = ["concepts"]
    if MODELS:
        names.append("two_vs_two")
    if misclassified_tables():
        names.append("misclassified")
    if adversarial_pairs():
        names += ["adversarial", "attacks"]
    return {name: f"results/report/{name}.csv" for name in names}


def get_report_table_sources(wildcards):
    return {name: REPORT_TABLE_SOURCES[name] for name in report_tables()}


def figure_outputs():
    """Every figure and report table of the configured analyses."""
    out = []
    for m in MODELS:
        out += [f"results/figures/two_vs_two/{m}.{ext}" for ext in ("pdf", "png")]
    for m, s, d in analyses():
        out += [f"results/figures/architecture/{m}/{s}/{d}.{ext}" for ext in ("svg", "pdf", "png")]
        out += [f"results/figures/concepts/{m}/{s}/{d}.{ext}" for ext in ("pdf", "png")]
    if misclassified_tables():
        out += [f"results/figures/misclassified/{m}.{ext}" for m in MODELS if MODELS[m].get("misclassified")
                for ext in ("pdf", "png")]
        out += [f"results/figures/mistake_cosines.{ext}" for ext in ("pdf", "png")]
    for m, s, d in adversarial_analyses():
        out += [f"results/figures/adversarial/{m}/{s}/{d}.{ext}" for ext in ("pdf", "png")]
    if RUNS:
        out += [f"results/figures/training.{ext}" for ext in ("pdf", "png")]
    out += list(report_tables().values())
    return out


def get_final_output():
    out = ["results/tables/concepts.parquet"]
    if MODELS:
        out.append("results/tables/two_vs_two.parquet")
    if misclassified_tables():
        out += ["results/tables/misclassified.parquet", "results/tables/mistakes.parquet"]
    if RUNS:
        out.append("results/tables/training.parquet")
    out += adversarial_outputs()
    out += figure_outputs()
    out += visualization_outputs()
    out += clustering_outputs()
    return out


# The config files of this run, for the report's captions: not a params value, so that
# renaming a config file reruns nothing.
config["wordlens_configfiles"] = [os.path.relpath(f) for f in workflow.configfiles] or ["config.yaml"]


def print_results():
    """Say where the results are, and which layers had an undefined test (after a successful run)."""
    from wordlens.tables import undefined_layers

    tables = [p for p in get_final_output() if Path(p).exists() and p.endswith(".parquet")]
    if tables:
        print("\nwordlens results (tidy Parquet tables, e.g. pandas.read_parquet):")
        for p in tables:
            print(f"  {p}")
    for p in tables:
        for line in undefined_layers(p):
            print(f"  warning: {line}")
    if any(Path(p).exists() for p in figure_outputs() if p.startswith("results/figures/")):
        print("Figures (PDF, PNG; architecture diagrams also SVG): results/figures/")
        print("HTML report with every figure and its caption: snakemake --report report.html")
