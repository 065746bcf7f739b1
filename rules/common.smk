# Helpers shared by all stages: config validation, model and layer resolution, targets.
import hashlib
import json
import os
import re
from functools import cache
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from wordlens.naming import checkpoint_epochs, checkpoint_model_id, checkpoint_name, parse_checkpoint_model_id


validate(config, schema="../schemas/config.schema.yaml")

IMAGE_SETS = config["image_sets"]
DS_MODELS = config["ds_models"]
MODELS = config.get("models", {})
TRAINING = config["training"]
RUNS = TRAINING.get("runs", {})
STATS = config["stats"]
ADVERSARIAL = config["adversarial"]
GROUPS = list(range(config["sampling"]["images_per_concept"]))
FASHION_MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def _config_error(message):
    raise WorkflowError(f"config: {message}")


def _check_references():
    for name, m in MODELS.items():
        for s in m["image_sets"]:
            if s not in IMAGE_SETS:
                _config_error(f"models.{name}.image_sets names {s!r}, not one of image_sets {sorted(IMAGE_SETS)}")
        if "trained" in m:
            if m["trained"] not in RUNS:
                _config_error(f"models.{name}.trained names {m['trained']!r}, not one of training.runs {sorted(RUNS)}")
            for key in ("arch", "weights", "checkpoint"):
                if m.get(key):
                    _config_error(f"models.{name}: 'trained' and '{key}' exclude each other")
        elif "arch" not in m:
            _config_error(f"models.{name} needs 'arch' (e.g. resnet50) or 'trained' (a training run)")
        if parse_checkpoint_model_id(name):
            _config_error(f"models.{name}: names ending in -epochNNNN are reserved for training checkpoints")
    for run, r in RUNS.items():
        for key in ("train_set", "test_set"):
            if r[key] not in IMAGE_SETS:
                _config_error(f"training.runs.{run}.{key} names {r[key]!r}, not one of image_sets {sorted(IMAGE_SETS)}")
    for where, sets in [("training.image_sets", TRAINING.get("image_sets"))] + [
        (f"training.runs.{run}.image_sets", r.get("image_sets")) for run, r in RUNS.items()
    ]:
        for s in sets or []:
            if s not in IMAGE_SETS:
                _config_error(f"{where} names {s!r}, not one of image_sets {sorted(IMAGE_SETS)}")
    for d in TRAINING.get("ds_models") or []:
        if d not in DS_MODELS:
            _config_error(f"training.ds_models names {d!r}, not one of ds_models {sorted(DS_MODELS)}")
    for name, s in IMAGE_SETS.items():
        if s.get("fetch") and s["kind"] != "fashion_mnist":
            _config_error(f"image_sets.{name}.fetch works for kind fashion_mnist only")
    if ADVERSARIAL["ds_model"] is not None and ADVERSARIAL["ds_model"] not in DS_MODELS:
        _config_error(f"adversarial.ds_model names {ADVERSARIAL['ds_model']!r}, not one of ds_models {sorted(DS_MODELS)}")
    if ADVERSARIAL["clip_min"] >= ADVERSARIAL["clip_max"]:
        _config_error(f"adversarial.clip_min ({ADVERSARIAL['clip_min']}) must be below clip_max ({ADVERSARIAL['clip_max']})")


_check_references()


# ---------------------------------------------------------------------------------------
# Models: configured networks and training checkpoints
# ---------------------------------------------------------------------------------------


def run_epochs(run):
    r = RUNS[run]
    return checkpoint_epochs(r["epochs"], r["checkpoint_every"])


def checkpoint_path(run, epoch):
    return f"results/training/{run}/checkpoints/{checkpoint_name(epoch)}"


CHECKPOINT_MODELS = {checkpoint_model_id(run, e): (run, e) for run in RUNS for e in run_epochs(run)}
for _clash in set(CHECKPOINT_MODELS) & set(MODELS):
    _config_error(f"model name {_clash!r} collides with a training checkpoint id")


@cache
def model_config(model):
    """The plain model description passed to the scripts (a params value; do not modify)."""
    if model in CHECKPOINT_MODELS:
        run, epoch = CHECKPOINT_MODELS[model]
        return {**RUNS[run]["model"], "checkpoint": checkpoint_path(run, epoch)}
    m = MODELS[model]
    if "trained" in m:
        run = m["trained"]
        return {**RUNS[run]["model"], "checkpoint": checkpoint_path(run, run_epochs(run)[-1])}
    keys = ("arch", "weights", "checkpoint", "num_classes", "arch_kwargs", "preprocessing", "seed")
    return {k: m[k] for k in keys if k in m}


def model_files(wildcards):
    """Files a model's weights come from (so that new weights rerun what depends on them)."""
    weights_file = model_config(wildcards.model).get("checkpoint")
    return [weights_file] if weights_file else []


# ---------------------------------------------------------------------------------------
# Layers, resolved once per (architecture, selection) and cached for later parses
# ---------------------------------------------------------------------------------------

_LAYER_CACHE = Path(".snakemake/wordlens/layers.json")


def _layer_cache():
    try:
        return json.loads(_LAYER_CACHE.read_text())
    except (OSError, ValueError):
        return {}


_LAYERS = _layer_cache()


def _resolve(model_cfg, selection):
    """(selected layers in graph order, block of each) — importing torch only on a cache miss."""
    key_src = json.dumps(
        {k: model_cfg.get(k) for k in ("arch", "num_classes", "arch_kwargs")} | {"selection": selection, "v": 1},
        sort_keys=True,
    )
    key = hashlib.sha1(key_src.encode()).hexdigest()
    if key not in _LAYERS:
        from wordlens.layers import resolve_selection

        layers, blocks = resolve_selection(model_cfg, selection)
        _LAYERS[key] = {"layers": layers, "blocks": blocks}
        _LAYER_CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = _LAYER_CACHE.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(_LAYERS, indent=1, sort_keys=True))
        os.replace(tmp, _LAYER_CACHE)
    return _LAYERS[key]["layers"], _LAYERS[key]["blocks"]


@cache
def model_layers(model):
    selection = TRAINING["layers"] if model in CHECKPOINT_MODELS else MODELS[model]["layers"]
    try:
        return _resolve(model_config(model), selection)[0]
    except ValueError as err:
        _config_error(f"layers of model {model!r}: {err}")


@cache
def layer_blocks(model):
    """The block of each layer of model_layers(model), as a list in the same order."""
    selection = TRAINING["layers"] if model in CHECKPOINT_MODELS else MODELS[model]["layers"]
    layers, blocks = _resolve(model_config(model), selection)
    return [blocks[layer] for layer in layers]


# ---------------------------------------------------------------------------------------
# Image sets, DS models, concepts
# ---------------------------------------------------------------------------------------


def adversarial_pairs():
    """(model, clean image set) pairs that are attacked."""
    return [(m, s) for m, cfg in MODELS.items() if cfg.get("adversarial") for s in cfg["image_sets"]]


def adversarial_set(model, image_set):
    """Name of the image set holding a model's successful adversarial images of an image set."""
    return f"{image_set}.mim.{model}"


ADVERSARIAL_SETS = {
    adversarial_set(m, s): {"kind": "tensor", "root": f"results/adversarial/{m}/{s}/images.pt", "split": "adversarial"}
    for m, s in adversarial_pairs()
}


def image_set_config(name):
    """The configuration of an image set: a configured one, or an adversarial one."""
    return IMAGE_SETS[name] if name in IMAGE_SETS else ADVERSARIAL_SETS[name]


def tensor_files(wildcards):
    """The tensor file of an adversarial image set (none for configured image sets)."""
    s = ADVERSARIAL_SETS.get(wildcards.image_set)
    return [s["root"]] if s else []


def attack_ds_model():
    return ADVERSARIAL["ds_model"] or next(iter(DS_MODELS))


def attack_chunks():
    return list(range((ADVERSARIAL["n_sources"] + ADVERSARIAL["sources_per_job"] - 1) // ADVERSARIAL["sources_per_job"]))


def attack_concept_tables(wildcards):
    """The concept table of the DS model that chooses the targets (and the others' when intersecting)."""
    first = attack_ds_model()
    own = f"results/concepts/{wildcards.image_set}/{first}.parquet"
    others = [f"results/concepts/{wildcards.image_set}/{d}.parquet" for d in DS_MODELS if d != first]
    return [own, *others] if config["concepts"]["intersect"] else [own]


def gather_adversarial_input(wildcards):
    layers = model_layers(wildcards.model)
    base = f"results/adversarial/{wildcards.model}/{wildcards.image_set}/{wildcards.ds}"
    return {
        "inputs": [f"{base}/{layer}/observed.npz" for layer in layers],
        "nulls": [f"{base}/{layer}/null/chunk{c}.npz" for layer in layers for c in chunks()],
    }


def image_set_files_of(name):
    """Fashion-MNIST files the workflow fetches itself (for image sets with fetch: true)."""
    s = IMAGE_SETS[name]
    if s.get("fetch"):
        return [f"{s['root']}/FashionMNIST/raw/{f}" for f in FASHION_MNIST_FILES]
    return []


def image_set_files(wildcards):
    return image_set_files_of(wildcards.image_set)


def ds_model_files(wildcards):
    """A word-vector file (so that a replaced file reruns the concept tables)."""
    ds = DS_MODELS[wildcards.ds]
    return [ds["path"]] if ds["kind"] != "sentence_transformer" and ds.get("path") else []


def class_file(image_set):
    return IMAGE_SETS[image_set].get("classes")


def concept_tables(wildcards):
    """The concept table of the DS model, and those of all others when intersecting."""
    own = f"results/concepts/{wildcards.image_set}/{wildcards.ds}.parquet"
    if not config["concepts"]["intersect"]:
        return {"table": own, "others": []}
    others = [f"results/concepts/{wildcards.image_set}/{d}.parquet" for d in DS_MODELS if d != wildcards.ds]
    return {"table": own, "others": others}


def chunks():
    size = STATS["chunk_size"]
    return list(range((STATS["n_permutations"] + size - 1) // size))


def chunk_range(wildcards):
    size = STATS["chunk_size"]
    start = int(wildcards.chunk) * size
    return [start, min(start + size, STATS["n_permutations"])]


def correlation_files(wildcards):
    return [
        f"results/correlations/{wildcards.model}/{wildcards.image_set}/{wildcards.layer}/group{g}.npz" for g in GROUPS
    ]


def gather_two_vs_two_input(wildcards):
    layers = model_layers(wildcards.model)
    base = f"results/two_vs_two/{wildcards.model}/{wildcards.image_set}/{wildcards.ds}"
    return {
        "observed": [f"{base}/{layer}/observed.parquet" for layer in layers],
        "nulls": [f"{base}/{layer}/null/chunk{c}.npz" for layer in layers for c in chunks()],
    }


def gather_one_vs_two_input(wildcards):
    layers = model_layers(wildcards.model)
    base = f"results/misclassified/{wildcards.model}/{wildcards.image_set}/{wildcards.ds}"
    return {
        "inputs": [f"{base}/{layer}/observed.npz" for layer in layers],
        "nulls": [f"{base}/{layer}/null/chunk{c}.npz" for layer in layers for c in chunks()],
    }


# ---------------------------------------------------------------------------------------
# What each model is analysed on
# ---------------------------------------------------------------------------------------


def training_image_sets(run):
    return RUNS[run].get("image_sets") or TRAINING.get("image_sets") or [RUNS[run]["train_set"], RUNS[run]["test_set"]]


def training_ds_models():
    return TRAINING.get("ds_models") or list(DS_MODELS)


def analyses():
    """(model, image set, DS model) triples of the 2 vs. 2 analysis of configured models."""
    return [(m, s, d) for m, cfg in MODELS.items() for s in cfg["image_sets"] for d in DS_MODELS]


def two_vs_two_tables():
    return [f"results/tables/two_vs_two/{m}/{s}/{d}.parquet" for m, s, d in analyses()]


def misclassified_tables():
    return [
        f"results/tables/misclassified/{m}/{s}/{d}.parquet"
        for m, s, d in analyses()
        if MODELS[m].get("misclassified")
    ]


def mistake_tables():
    return [
        f"results/misclassified/{m}/{s}/{d}/mistakes.parquet"
        for m, s, d in analyses()
        if MODELS[m].get("misclassified")
    ]


def concept_layer(model):
    """The layer of a model's per-concept figure: models.<name>.concept_layer, else its last layer."""
    layers = model_layers(model)
    chosen = MODELS[model].get("concept_layer")
    if chosen is None:
        return layers[-1]
    if chosen not in layers:
        _config_error(f"models.{model}.concept_layer {chosen!r} is not one of its analysed layers {layers}")
    return chosen


def describe_run(model=None):
    """A line for figure captions: the model and DS models a figure comes from (a plain
    params value: it changes only when those do)."""
    parts = []
    if model in MODELS:
        m = MODELS[model]
        what = f"trained by run {m['trained']}" if "trained" in m else (
            f"arch {m['arch']}, weights {m.get('weights') or m.get('checkpoint') or 'random init'}"
        )
        parts.append(f"Model {model} ({what})")
    parts.append("DS models: " + ", ".join(f"{d} ({c['kind']})" for d, c in DS_MODELS.items()))
    return "; ".join(parts)


# The config files of this run, for the report's captions (not a params value, so that
# renaming a config file reruns nothing).
config["wordlens_configfiles"] = [os.path.relpath(f) for f in workflow.configfiles] or ["config.yaml"]


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


def report_tables():
    tables = {"concepts": "results/report/concepts.csv"}
    if MODELS:
        tables["two_vs_two"] = "results/report/two_vs_two.csv"
    if misclassified_tables():
        tables["misclassified"] = "results/report/misclassified.csv"
    if adversarial_pairs():
        tables["adversarial"] = "results/report/adversarial.csv"
        tables["attacks"] = "results/report/adversarial_attacks.csv"
    return tables


def report_table_inputs(wildcards):
    sources = {
        "concepts": "results/tables/concepts.parquet",
        "two_vs_two": "results/tables/two_vs_two.parquet",
        "misclassified": "results/tables/misclassified.parquet",
        "adversarial": "results/tables/adversarial.parquet",
        "attacks": "results/tables/adversarial_attacks.parquet",
    }
    return {name: sources[name] for name in report_tables()}


def adversarial_analyses():
    return [(m, s, d) for m, s in adversarial_pairs() for d in DS_MODELS]


def adversarial_tables():
    return [f"results/tables/adversarial/{m}/{s}/{d}.parquet" for m, s, d in adversarial_analyses()]


def attack_tables():
    return [f"results/tables/adversarial_attacks/{m}/{s}.parquet" for m, s in adversarial_pairs()]


def adversarial_outputs():
    if not adversarial_pairs():
        return []
    grids = [f"results/adversarial/{m}/{s}/grid.png" for m, s in adversarial_pairs()]
    return ["results/tables/adversarial.parquet", "results/tables/adversarial_attacks.parquet", *grids]


def training_tables():
    return [f"results/tables/training/{run}.parquet" for run in RUNS]


def checkpoint_analyses():
    """(checkpoint model, image set, DS model) triples of the training curves."""
    return [
        (checkpoint_model_id(run, e), s, d)
        for run in RUNS
        for e in run_epochs(run)
        for s in training_image_sets(run)
        for d in training_ds_models()
    ]


def concept_summaries():
    used = {s for _, s, _ in analyses()} | {s for run in RUNS for s in training_image_sets(run)}
    return [f"results/concepts/{s}/{d}.summary.parquet" for s in sorted(used) for d in DS_MODELS]


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
    return out


def _alternatives(names):
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) or "(?!)"


wildcard_constraints:
    model=_alternatives(list(MODELS) + list(CHECKPOINT_MODELS)),
    image_set=_alternatives(list(IMAGE_SETS) + list(ADVERSARIAL_SETS)),
    ds=_alternatives(DS_MODELS),
    run=_alternatives(RUNS),
    layer=r"[^/]+",
    group=r"\d+",
    chunk=r"\d+",


def print_results():
    """Say where the results are (after a successful run)."""
    tables = [p for p in get_final_output() if Path(p).exists() and p.endswith(".parquet")]
    if tables:
        print("\nwordlens results (tidy Parquet tables, e.g. pandas.read_parquet):")
        for p in tables:
            print(f"  {p}")
    if any(Path(p).exists() for p in figure_outputs() if p.startswith("results/figures/")):
        print("Figures (PDF, PNG; architecture diagrams also SVG): results/figures/")
        print("HTML report with every figure and its caption: snakemake --report report.html")
