# Models, their layers and image sets, resolved at parse time (layers on the meta device,
# cached in .snakemake/wordlens/layers.json so later parses need not import torch).
import hashlib
import json
import os
import re
from functools import cache

from wordlens.naming import chunk_bounds, checkpoint_epochs, checkpoint_model_id, checkpoint_name


def run_epochs(run):
    r = RUNS[run]
    return checkpoint_epochs(r["epochs"], r["checkpoint_every"])


def checkpoint_path(run, epoch):
    return f"results/training/{run}/checkpoints/{checkpoint_name(epoch)}"


CHECKPOINT_MODELS = {checkpoint_model_id(run, e): (run, e) for run in RUNS for e in run_epochs(run)}
for _clash in set(CHECKPOINT_MODELS) & set(MODELS):
    config_error(f"model name {_clash!r} collides with a training checkpoint id")


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


_LAYER_CACHE = Path(".snakemake/wordlens/layers.json")


def _read_layer_cache():
    try:
        return json.loads(_LAYER_CACHE.read_text())
    except (OSError, ValueError):
        return {}


_LAYERS = _read_layer_cache()


def _resolve(model_cfg, selection):
    """(selected layers in graph order, block of each, output shape of each) — importing
    torch only on a cache miss."""
    key_src = json.dumps(
        {k: model_cfg.get(k) for k in ("arch", "num_classes", "arch_kwargs", "preprocessing", "weights")}
        | {"selection": selection, "v": 2},
        sort_keys=True,
    )
    key = hashlib.sha1(key_src.encode()).hexdigest()
    if key not in _LAYERS:
        from wordlens.layers import resolve_selection, selection_shapes

        layers, blocks = resolve_selection(model_cfg, selection)
        _LAYERS[key] = {"layers": layers, "blocks": blocks, "shapes": selection_shapes(model_cfg, layers)}
        _LAYER_CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = _LAYER_CACHE.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(_LAYERS, indent=1, sort_keys=True))
        os.replace(tmp, _LAYER_CACHE)
    return _LAYERS[key]["layers"], _LAYERS[key]["blocks"], _LAYERS[key]["shapes"]


@cache
def _model_selection(model):
    selection = TRAINING["layers"] if model in CHECKPOINT_MODELS else MODELS[model]["layers"]
    try:
        return _resolve(model_config(model), selection)
    except ValueError as err:
        config_error(f"layers of model {model!r}: {err}")


def model_layers(model):
    """The analysed layers of a model, in graph order."""
    return _model_selection(model)[0]


def layer_blocks(model):
    """The block of each layer of model_layers(model), as a list in the same order."""
    layers, blocks, _ = _model_selection(model)
    return [blocks[layer] for layer in layers]


def concept_layer(model):
    """The layer of a model's per-concept figure: models.<name>.concept_layer, else its last layer."""
    layers = model_layers(model)
    chosen = MODELS[model].get("concept_layer")
    if chosen is None:
        return layers[-1]
    if chosen not in layers:
        config_error(f"models.{model}.concept_layer {chosen!r} is not one of its analysed layers {layers}")
    return chosen


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


def class_file(image_set):
    return IMAGE_SETS[image_set].get("classes")


def attack_ds_model():
    """The DS model whose word correlations choose the attack targets."""
    return ADVERSARIAL["ds_model"] or next(iter(DS_MODELS))


def attack_settings():
    """The MIM settings of the attack rule, as [key, value] pairs (a plain params value)."""
    keys = ("epsilon", "step_size", "iterations", "decay", "norm", "clip_min", "clip_max", "batch_size")
    return [[k, str(ADVERSARIAL[k]) if k == "norm" else ADVERSARIAL[k]] for k in keys]


def permutation_chunks():
    """[(start, stop), …] of the permutation chunks (stats.chunk_size permutations each)."""
    return chunk_bounds(STATS["n_permutations"], STATS["chunk_size"])


def attack_chunks():
    """The attack job numbers (adversarial.sources_per_job source concepts each)."""
    return list(range(len(chunk_bounds(ADVERSARIAL["n_sources"], ADVERSARIAL["sources_per_job"]))))


def training_image_sets(run):
    return RUNS[run].get("image_sets") or TRAINING.get("image_sets") or [RUNS[run]["train_set"], RUNS[run]["test_set"]]


def training_ds_models():
    return TRAINING.get("ds_models") or list(DS_MODELS)


def analyses():
    """(model, image set, DS model) triples of the 2 vs. 2 analysis of configured models."""
    return [(m, s, d) for m, cfg in MODELS.items() for s in cfg["image_sets"] for d in DS_MODELS]


def misclassified_analyses():
    return [(m, s, d) for m, s, d in analyses() if MODELS[m].get("misclassified")]


def adversarial_analyses():
    return [(m, s, d) for m, s in adversarial_pairs() for d in DS_MODELS]


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
    cls=r"\d+",


# ---------------------------------------------------------------------------------------
# Visualization: which models, image set, classes, layers and channels
# ---------------------------------------------------------------------------------------
VISUALIZATION = config["visualization"]
for _m in VISUALIZATION["models"]:
    if _m not in MODELS:
        config_error(f"visualization.models names {_m!r}, not one of models {sorted(MODELS)}")
if VISUALIZATION["image_set"] is not None and VISUALIZATION["image_set"] not in IMAGE_SETS:
    config_error(f"visualization.image_set {VISUALIZATION['image_set']!r} is not one of image_sets {sorted(IMAGE_SETS)}")


def visual_models():
    return list(VISUALIZATION["models"])


def visual_image_set(model):
    return VISUALIZATION["image_set"] or MODELS[model]["image_sets"][0]


@cache
def class_ids_of(image_set):
    """The class ids a model's outputs refer to, for an image set (parse time; no torch)."""
    from wordlens.concepts import class_ids
    from wordlens.images import ImageSource

    return class_ids(ImageSource.from_config(image_set, IMAGE_SETS[image_set]), class_file(image_set))


@cache
def visual_classes(image_set):
    """Indices of the visualised classes of an image set (visualization.classes or the first max_classes)."""
    from wordlens.visualization import choose_classes

    try:
        return choose_classes(class_ids_of(image_set), VISUALIZATION["classes"], VISUALIZATION["max_classes"])
    except ValueError as err:
        config_error(str(err))


@cache
def _visual_selection(model):
    """(visualised layers, output shape of every resolved layer) of a model."""
    from wordlens.visualization import check_channels, check_layer, spatial_layers

    selection = VISUALIZATION["layers"] or MODELS[model]["layers"]
    try:
        layers, _, shapes = _resolve(model_config(model), selection)
        if VISUALIZATION["layers"]:
            for layer in layers:
                check_layer(layer, shapes, f"visualization.layers of model {model!r}")
        chosen = spatial_layers(layers, shapes)
        if not chosen:
            raise ValueError(f"model {model!r} has no analysed layer with spatial extent to visualise; "
                             "name some in visualization.layers")
        for layer in chosen:
            check_channels(VISUALIZATION["channels"], layer, shapes[layer])
        _, _, analysed_shapes = _resolve(model_config(model), MODELS[model]["layers"])
        gradcam = VISUALIZATION["gradcam_layer"] or spatial_layers(model_layers(model), analysed_shapes)[-1]
        _, _, gradcam_shapes = _resolve(model_config(model), [gradcam])
        check_layer(gradcam, gradcam_shapes, "visualization.gradcam_layer")
    except ValueError as err:
        config_error(f"{err}")
    return chosen, shapes, gradcam


def visual_layers(model):
    return _visual_selection(model)[0]


def visual_layer_shape(model, layer):
    return _visual_selection(model)[1][layer]


def gradcam_layer(model):
    return _visual_selection(model)[2]


def visual_runs():
    """Training runs whose checkpoints get activation maximization of the classes."""
    if VISUALIZATION["runs"] is not None:
        for run in VISUALIZATION["runs"]:
            if run not in RUNS:
                config_error(f"visualization.runs names {run!r}, not one of training.runs {sorted(RUNS)}")
        return list(VISUALIZATION["runs"])
    return list(dict.fromkeys(MODELS[m]["trained"] for m in visual_models() if "trained" in MODELS[m]))


def run_image_set(run):
    """The image set whose classes and real images the run's visualisations use."""
    return training_image_sets(run)[0]


# ---------------------------------------------------------------------------------------
# Clustering: which models, layers, references (DS models, WordNet, hierarchy files)
# ---------------------------------------------------------------------------------------
CLUSTERING = config["clustering"]
#: reference names other than DS models (a DS model may not take them)
TAXONOMY_REFERENCES = ("wordnet", "hierarchy")
for _m in CLUSTERING["models"]:
    if _m not in MODELS:
        config_error(f"clustering.models names {_m!r}, not one of models {sorted(MODELS)}")
for _d in CLUSTERING["ds_models"] or []:
    if _d not in DS_MODELS:
        config_error(f"clustering.ds_models names {_d!r}, not one of ds_models {sorted(DS_MODELS)}")
for _d in DS_MODELS:
    if CLUSTERING["models"] and _d in TAXONOMY_REFERENCES:
        config_error(f"ds_models.{_d}: the name is reserved for the clustering branch's references; rename it")


def cluster_models():
    return list(CLUSTERING["models"])


def cluster_ds_models():
    return list(CLUSTERING["ds_models"] or DS_MODELS)


@cache
def _cluster_selection(model):
    """(layers, figure layers, prediction-tree layer) of a clustered model."""
    from wordlens.visualization import check_layer, spatial_layers

    try:
        if CLUSTERING["layers"]:
            layers, blocks, shapes = _resolve(model_config(model), CLUSTERING["layers"])
        else:
            layers, blocks, shapes = _model_selection(model)
        spatial = spatial_layers(layers, shapes)
        figure_layers = CLUSTERING["figure_layers"] or [spatial[-1] if spatial else layers[-1]]
        for layer in figure_layers:
            if layer not in layers:
                raise ValueError(f"clustering.figure_layers: {layer!r} is not one of the clustered layers {layers}")
        tree_layer = CLUSTERING["prediction_trees"]["layer"]
        if CLUSTERING["prediction_trees"]["classes"]:
            if tree_layer is None:
                if not spatial:
                    raise ValueError("clustering.prediction_trees needs a layer with spatial extent; "
                                     "name one in clustering.prediction_trees.layer")
                tree_layer = spatial[-1]
            _, _, tree_shapes = _resolve(model_config(model), [tree_layer])
            check_layer(tree_layer, tree_shapes, "clustering.prediction_trees.layer")
    except ValueError as err:
        config_error(f"model {model!r}: {err}")
    return layers, figure_layers, tree_layer, [blocks[layer] for layer in layers]


def cluster_layers(model):
    return _cluster_selection(model)[0]


def cluster_figure_layers(model):
    return _cluster_selection(model)[1]


def prediction_tree_layer(model):
    return _cluster_selection(model)[2]


def cluster_blocks(model):
    return _cluster_selection(model)[3]


def cluster_references(image_set):
    """Reference taxonomies of an image set: the DS models' word spaces, WordNet (classes
    that are WordNet ids: kind imagenet) and the image set's hierarchy file."""
    refs = cluster_ds_models()
    if CLUSTERING["wordnet"] and IMAGE_SETS[image_set]["kind"] == "imagenet":
        refs.append("wordnet")
    if IMAGE_SETS[image_set].get("hierarchy"):
        refs.append("hierarchy")
    return refs


def hierarchy_file(image_set):
    """An image set's hierarchy file: a relative path is looked up in the working
    directory, then in the workflow's own directory (so the shipped ``data/…`` files work
    from any working directory)."""
    path = IMAGE_SETS[image_set].get("hierarchy")
    if path and not os.path.isabs(path) and not os.path.exists(path):
        shipped = os.path.join(workflow.basedir, path)
        if os.path.exists(shipped):
            return shipped
    return path


def cluster_analyses():
    """(model, image set, reference) triples of the clustering branch."""
    return [(m, s, r) for m in cluster_models() for s in MODELS[m]["image_sets"] for r in cluster_references(s)]


def cluster_chunks():
    """[(start, stop), …] of the agreement nulls' permutation chunks."""
    return chunk_bounds(CLUSTERING["n_permutations"] or STATS["n_permutations"],
                        CLUSTERING["chunk_size"] or STATS["chunk_size"])


def tree_classes(image_set):
    """Class indices of the prediction trees of an image set."""
    ids = class_ids_of(image_set)
    out = []
    for c in CLUSTERING["prediction_trees"]["classes"]:
        if c not in ids:
            config_error(f"clustering.prediction_trees.classes: {c!r} is not a class of image set {image_set!r}")
        out.append(ids.index(c))
    return out


wildcard_constraints:
    reference=_alternatives(list(DS_MODELS) + list(TAXONOMY_REFERENCES)),
