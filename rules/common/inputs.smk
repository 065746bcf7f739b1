# Input and params functions of the rules (each takes the job's wildcards).
from functools import cache

from wordlens.naming import FASHION_MNIST_FILES


def fashion_mnist_files(image_set):
    """Fashion-MNIST files the workflow fetches itself (for image sets with fetch: true)."""
    s = IMAGE_SETS[image_set]
    if s.get("fetch"):
        return [f"{s['root']}/FashionMNIST/raw/{f}" for f in FASHION_MNIST_FILES]
    return []


def get_image_set_files(wildcards):
    return fashion_mnist_files(wildcards.image_set)


@cache
def _listing(image_set):
    from wordlens.images import ImageSource, listing_digest

    return listing_digest(ImageSource.from_config(image_set, IMAGE_SETS[image_set]))


def image_set_listing(image_set):
    """A digest of the image set's files (names, sizes, modification times): a params value,
    so that an added, removed or replaced image reruns the sampling (or training) and what
    follows.  Fetched image sets are tracked through their files (inputs) instead."""
    if IMAGE_SETS[image_set].get("fetch"):
        return "fetched"
    return _listing(image_set)


def get_image_set_listing(wildcards):
    return image_set_listing(wildcards.image_set)


def get_model_files(wildcards):
    """Files a model's weights come from (so that new weights rerun what depends on them)."""
    weights_file = model_config(wildcards.model).get("checkpoint")
    return [weights_file] if weights_file else []


def get_tensor_files(wildcards):
    """The tensor file of an adversarial image set (none for configured image sets)."""
    s = ADVERSARIAL_SETS.get(wildcards.image_set)
    return [s["root"]] if s else []


def get_ds_model_files(wildcards):
    """A word-vector file (so that a replaced file reruns the concept tables)."""
    ds = DS_MODELS[wildcards.ds]
    return [ds["path"]] if ds["kind"] != "sentence_transformer" and ds.get("path") else []


def get_concept_tables(wildcards):
    """The concept table of the DS model, and, with concepts.intersect, those of all others."""
    own = f"results/concepts/{wildcards.image_set}/{wildcards.ds}.parquet"
    if not config["concepts"]["intersect"]:
        return {"concept_table": own, "other_tables": []}
    others = [f"results/concepts/{wildcards.image_set}/{d}.parquet" for d in DS_MODELS if d != wildcards.ds]
    return {"concept_table": own, "other_tables": others}


def get_attack_concept_tables(wildcards):
    """The concept table of the DS model that chooses the targets (first), and the others'
    when intersecting."""
    first = attack_ds_model()
    own = f"results/concepts/{wildcards.image_set}/{first}.parquet"
    others = [f"results/concepts/{wildcards.image_set}/{d}.parquet" for d in DS_MODELS if d != first]
    return [own, *others] if config["concepts"]["intersect"] else [own]


def get_correlation_files(wildcards):
    return [
        f"results/correlations/{wildcards.model}/{wildcards.image_set}/{wildcards.layer}/group{g}.npz" for g in GROUPS
    ]


def get_chunk_start(wildcards):
    return permutation_chunks()[int(wildcards.chunk)][0]


def get_chunk_stop(wildcards):
    return permutation_chunks()[int(wildcards.chunk)][1]


def _layer_results(wildcards, branch, observed):
    """Every layer's observed file and null chunks of one (model, image set, DS model)
    of a branch (two_vs_two, misclassified, adversarial): the gather rules' inputs."""
    base = f"results/{branch}/{wildcards.model}/{wildcards.image_set}/{wildcards.ds}"
    layers = model_layers(wildcards.model)
    return {
        "observed": [f"{base}/{layer}/{observed}" for layer in layers],
        "nulls": [f"{base}/{layer}/null/chunk{c}.npz" for layer in layers for c in range(len(permutation_chunks()))],
    }


def get_two_vs_two_results(wildcards):
    return _layer_results(wildcards, "two_vs_two", "observed.parquet")


def get_misclassified_results(wildcards):
    return _layer_results(wildcards, "misclassified", "observed.npz")


def get_adversarial_results(wildcards):
    return _layer_results(wildcards, "adversarial", "observed.npz")


def get_layers(wildcards):
    return model_layers(wildcards.model)


def get_blocks(wildcards):
    return layer_blocks(wildcards.model)


def get_describe_model(wildcards):
    return describe_run(wildcards.model)


def get_model_config(wildcards):
    return model_config(wildcards.model)


def get_image_set_config(wildcards):
    return image_set_config(wildcards.image_set)


def get_class_file(wildcards):
    return class_file(wildcards.image_set)


def get_attack_concept_table(wildcards):
    """The concept table of the DS model that chooses the targets (for readable class names)."""
    return get_attack_concept_tables(wildcards)[0]


def get_adversarial_manifest(wildcards):
    return f"results/manifests/{adversarial_set(wildcards.model, wildcards.image_set)}.parquet"


def get_adversarial_activations(wildcards):
    """The layer's activations of the adversarial images of the (model, image set)."""
    adv = adversarial_set(wildcards.model, wildcards.image_set)
    return f"results/activations/{wildcards.model}/{adv}/{wildcards.layer}.h5"


def _checkpoint_analyses(run):
    """(epoch, image set, DS model) of a training run's 2 vs. 2 tables, epoch-major."""
    return [(e, s, d) for e in run_epochs(run) for s in training_image_sets(run) for d in training_ds_models()]


def get_checkpoint_tables(wildcards):
    return [
        f"results/tables/two_vs_two/{checkpoint_model_id(wildcards.run, e)}/{s}/{d}.parquet"
        for e, s, d in _checkpoint_analyses(wildcards.run)
    ]


def get_checkpoint_epochs(wildcards):
    """The epoch of each of get_checkpoint_tables."""
    return [e for e, _, _ in _checkpoint_analyses(wildcards.run)]


def get_model_two_vs_two_tables(wildcards):
    """A model's 2 vs. 2 tables over its image sets and the DS models."""
    return [f"results/tables/two_vs_two/{wildcards.model}/{s}/{d}.parquet"
            for s in MODELS[wildcards.model]["image_sets"] for d in DS_MODELS]


def get_model_misclassified_tables(wildcards):
    return [f"results/tables/misclassified/{wildcards.model}/{s}/{d}.parquet"
            for s in MODELS[wildcards.model]["image_sets"] for d in DS_MODELS]


def get_concept_layer(wildcards):
    return concept_layer(wildcards.model)


def get_concept_layer_accuracy(wildcards):
    """The per-concept accuracies at the model's concept layer."""
    w = wildcards
    return f"results/two_vs_two/{w.model}/{w.image_set}/{w.ds}/{concept_layer(w.model)}/concepts.parquet"


# Visualization
def get_visual_layer_shape(wildcards):
    return visual_layer_shape(wildcards.model, wildcards.layer)


def get_visual_classes(wildcards):
    return visual_classes(wildcards.image_set)


def get_panel_classes(wildcards):
    """The classes of a layer's panels: the first visualization.images classes (adding a
    class at the end leaves the layer jobs alone)."""
    return visual_classes(wildcards.image_set)[: VISUALIZATION["images"]]


def get_gradcam_layer(wildcards):
    return gradcam_layer(wildcards.model)


def get_actmax_settings(wildcards):
    """The activation-maximization settings as [key, value] pairs, sorted (a plain params value)."""
    return sorted([k, v] for k, v in VISUALIZATION["actmax"].items())


def get_first_concept_table(wildcards):
    """The first DS model's concept table of the image set (for readable class names)."""
    return f"results/concepts/{wildcards.image_set}/{next(iter(DS_MODELS))}.parquet"


def get_maximized_classes(wildcards):
    w = wildcards
    return [f"results/visualization/{w.model}/{w.image_set}/classes/class{c}.npz" for c in visual_classes(w.image_set)]


def get_model_image_sets(wildcards):
    return list(MODELS[wildcards.model]["image_sets"])


def get_model_predictions(wildcards):
    return [f"results/predictions/{wildcards.model}/{s}.parquet" for s in MODELS[wildcards.model]["image_sets"]]


def get_visual_image_set(wildcards):
    return visual_image_set(wildcards.model)


def get_visual_image_set_config(wildcards):
    return IMAGE_SETS[visual_image_set(wildcards.model)]


def get_visual_class_file(wildcards):
    return class_file(visual_image_set(wildcards.model))


def get_visual_manifest(wildcards):
    return f"results/manifests/{visual_image_set(wildcards.model)}.parquet"


def get_run_checkpoints(wildcards):
    return [checkpoint_path(wildcards.run, e) for e in run_epochs(wildcards.run)]


def get_run_checkpoint_models(wildcards):
    """[model id, model config] of each checkpoint of the run, in epoch order."""
    return [[checkpoint_model_id(wildcards.run, e), model_config(checkpoint_model_id(wildcards.run, e))]
            for e in run_epochs(wildcards.run)]


def get_run_epochs(wildcards):
    return run_epochs(wildcards.run)


def get_run_image_set(wildcards):
    return run_image_set(wildcards.run)


def get_run_image_set_config(wildcards):
    return IMAGE_SETS[run_image_set(wildcards.run)]


def get_run_manifest(wildcards):
    return f"results/manifests/{run_image_set(wildcards.run)}.parquet"


def get_run_concept_table(wildcards):
    return f"results/concepts/{run_image_set(wildcards.run)}/{next(iter(DS_MODELS))}.parquet"


def get_run_maximized_classes(wildcards):
    return [f"results/visualization/training/{wildcards.run}/class{c}.npz"
            for c in visual_classes(run_image_set(wildcards.run))]


# ---------------------------------------------------------------------------------------
# Clustering
# ---------------------------------------------------------------------------------------
def get_reference_kind(wildcards):
    """``ds`` (a DS model's word vectors), ``wordnet`` or ``hierarchy`` (a file)."""
    return wildcards.reference if wildcards.reference in TAXONOMY_REFERENCES else "ds"


def get_reference_inputs(wildcards):
    """What a reference taxonomy is built from, and the manifest (its concepts)."""
    inputs = {"manifest": f"results/manifests/{wildcards.image_set}.parquet"}
    kind = get_reference_kind(wildcards)
    if kind == "ds":
        inputs["concept_table"] = f"results/concepts/{wildcards.image_set}/{wildcards.reference}.parquet"
    elif kind == "wordnet":
        inputs["data_noun"] = f"{CLUSTERING['wordnet_root']}/dict/data.noun"
    else:
        inputs["hierarchy"] = hierarchy_file(wildcards.image_set)
    return inputs


def get_keep_vectors(wildcards):
    """Whether a layer's representative vectors are kept (the figure layers' maps and noise
    category need them; the other layers keep only their distances)."""
    return wildcards.layer in cluster_figure_layers(wildcards.model)


def get_cluster_chunk_start(wildcards):
    return cluster_chunks()[int(wildcards.chunk)][0]


def get_cluster_chunk_stop(wildcards):
    return cluster_chunks()[int(wildcards.chunk)][1]


def get_cluster_layers(wildcards):
    return cluster_layers(wildcards.model)


def get_cluster_blocks(wildcards):
    return cluster_blocks(wildcards.model)


def get_cluster_permutations(wildcards):
    return cluster_chunks()[-1][1]


def get_clustering_results(wildcards):
    """Every clustered layer's observed agreement and null chunks of one (model, image set, reference)."""
    base = f"results/clustering/{wildcards.model}/{wildcards.image_set}/{wildcards.reference}"
    layers = cluster_layers(wildcards.model)
    return {
        "observed": [f"{base}/{layer}/observed.parquet" for layer in layers],
        "nulls": [f"{base}/{layer}/null/chunk{c}.npz" for layer in layers for c in range(len(cluster_chunks()))],
    }


def get_taxonomy_inputs(wildcards):
    """A figure layer's representative vectors, its activations (the images' map) and the
    concept names."""
    return {
        "vectors": f"results/clustering/{wildcards.model}/{wildcards.image_set}/{wildcards.layer}/vectors.npz",
        "h5": f"results/activations/{wildcards.model}/{wildcards.image_set}/{wildcards.layer}.h5",
        "manifest": f"results/manifests/{wildcards.image_set}.parquet",
        "concept_table": get_first_concept_table(wildcards),
    }


def get_prediction_tree_layer(wildcards):
    return prediction_tree_layer(wildcards.model)


def get_prediction_tree_activations(wildcards):
    layer = prediction_tree_layer(wildcards.model)
    return f"results/activations/{wildcards.model}/{wildcards.image_set}/{layer}.h5"


def get_model_clustering_tables(wildcards):
    return [f"results/tables/clustering/{m}/{s}/{r}.parquet" for m, s, r in cluster_analyses() if m == wildcards.model]


def get_model_two_vs_two_tables(wildcards):
    """The model's 2 vs. 2 tables (drawn beside its agreement curve)."""
    return [f"results/tables/two_vs_two/{m}/{s}/{d}.parquet" for m, s, d in analyses() if m == wildcards.model]
