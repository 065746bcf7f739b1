# Visualization: what layers and units respond to (feature maps, DeconvNet, guided
# backpropagation, Grad-CAM, activation maximization, dataset examples), fooling, the
# mistakes and attacks explained with Grad-CAM, out-of-sample predictions, and activation
# maximization through training (Réda & Xu 2019; Dai, "What do CNN neurons learn").


rule visualize_layer:
    input:
        manifest="results/manifests/{image_set}.parquet",
        h5="results/activations/{model}/{image_set}/{layer}.h5",
        weights=get_model_files,
    output:
        feature_maps=report(
            "results/visualization/{model}/{image_set}/layers/{layer}/feature_maps.png",
            caption="../report/feature_maps.rst",
            category="Visualization",
            subcategory="{model}: layers",
            labels={"model": "{model}", "layer": "{layer}", "figure": "feature maps"},
        ),
        projections=report(
            "results/visualization/{model}/{image_set}/layers/{layer}/projections.png",
            caption="../report/projections.rst",
            category="Visualization",
            subcategory="{model}: layers",
            labels={"model": "{model}", "layer": "{layer}", "figure": "projections"},
        ),
        channels=report(
            "results/visualization/{model}/{image_set}/layers/{layer}/channels.png",
            caption="../report/channels.rst",
            category="Visualization",
            subcategory="{model}: layers",
            labels={"model": "{model}", "layer": "{layer}", "figure": "channels"},
        ),
        table="results/visualization/{model}/{image_set}/layers/{layer}/channels.parquet",
    params:
        model=get_model_config,
        image_set=get_image_set_config,
        class_file=get_class_file,
        shape=get_visual_layer_shape,
        classes=get_panel_classes,
        channels=VISUALIZATION["channels"],
        images=VISUALIZATION["images"],
        examples=VISUALIZATION["examples"],
        actmax=get_actmax_settings,
        seed=VISUALIZATION["seed"],
        device=config["device"],
    log:
        "logs/visualize_layer/{model}/{image_set}/{layer}.log",
    benchmark:
        "logs/benchmarks/visualize_layer/{model}/{image_set}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/visualize_layer.py"


rule maximize_class:
    input:
        manifest="results/manifests/{image_set}.parquet",
        weights=get_model_files,
    output:
        images="results/visualization/{model}/{image_set}/classes/class{cls}.npz",
    params:
        model=get_model_config,
        image_set=get_image_set_config,
        class_file=get_class_file,
        starts=VISUALIZATION["starts"],
        actmax=get_actmax_settings,
        seed=VISUALIZATION["seed"],
        device=config["device"],
    log:
        "logs/maximize_class/{model}/{image_set}/class{cls}.log",
    benchmark:
        "logs/benchmarks/maximize_class/{model}/{image_set}/class{cls}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/maximize_class.py"


rule plot_maximized_classes:
    input:
        images=get_maximized_classes,
        concept_table=get_first_concept_table,  # readable class names
    output:
        png=report(
            "results/visualization/{model}/{image_set}/classes.png",
            caption="../report/maximized_classes.rst",
            category="Visualization",
            subcategory="{model}: classes",
        ),
        table="results/tables/actmax/{model}/{image_set}.parquet",
    log:
        "logs/plot_maximized_classes/{model}/{image_set}.log",
    benchmark:
        "logs/benchmarks/plot_maximized_classes/{model}/{image_set}.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/plot_maximized_classes.py"


rule fool_images:
    input:
        manifest="results/manifests/{image_set}.parquet",
        weights=get_model_files,
        concept_table=get_first_concept_table,
    output:
        table="results/tables/fooling/{model}/{image_set}.parquet",
        panel=report(
            "results/visualization/{model}/{image_set}/fooling.png",
            caption="../report/fooling.rst",
            category="Visualization",
            subcategory="{model}: fooling",
        ),
        curve=report(
            "results/visualization/{model}/{image_set}/fooling_steps.png",
            caption="../report/fooling_steps.rst",
            category="Visualization",
            subcategory="{model}: fooling",
        ),
    params:
        model=get_model_config,
        image_set=get_image_set_config,
        class_file=get_class_file,
        classes=get_visual_classes,
        gradcam_layer=get_gradcam_layer,
        learning_rates=VISUALIZATION["fooling"]["learning_rates"],
        steps=VISUALIZATION["fooling"]["steps"],
        device=config["device"],
    log:
        "logs/fool_images/{model}/{image_set}.log",
    benchmark:
        "logs/benchmarks/fool_images/{model}/{image_set}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/fool_images.py"


rule explain_mistakes:
    input:
        manifest="results/manifests/{image_set}.parquet",
        predictions="results/predictions/{model}/{image_set}.parquet",
        weights=get_model_files,
        concept_table=get_first_concept_table,
    output:
        png=report(
            "results/visualization/{model}/{image_set}/mistakes.png",
            caption="../report/explained_mistakes.rst",
            category="Visualization",
            subcategory="{model}: mistakes and attacks",
        ),
    params:
        model=get_model_config,
        image_set=get_image_set_config,
        class_file=get_class_file,
        gradcam_layer=get_gradcam_layer,
        n=VISUALIZATION["mistakes"],
        device=config["device"],
    log:
        "logs/explain_mistakes/{model}/{image_set}.log",
    benchmark:
        "logs/benchmarks/explain_mistakes/{model}/{image_set}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/explain_mistakes.py"


rule explain_attacks:
    input:
        manifest="results/manifests/{image_set}.parquet",
        images="results/adversarial/{model}/{image_set}/images.pt",
        attacks="results/tables/adversarial_attacks/{model}/{image_set}.parquet",
        weights=get_model_files,
        concept_table=get_first_concept_table,
    output:
        png=report(
            "results/visualization/{model}/{image_set}/attacks.png",
            caption="../report/explained_attacks.rst",
            category="Visualization",
            subcategory="{model}: mistakes and attacks",
        ),
    params:
        model=get_model_config,
        image_set=get_image_set_config,
        gradcam_layer=get_gradcam_layer,
        n=VISUALIZATION["attacks"],
        device=config["device"],
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/explain_attacks/{model}/{image_set}.log",
    benchmark:
        "logs/benchmarks/explain_attacks/{model}/{image_set}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/explain_attacks.py"


rule predict_noise:
    input:
        predictions=get_model_predictions,
        manifest=get_visual_manifest,
        weights=get_model_files,
    output:
        table="results/tables/out_of_sample/{model}.parquet",
        png=report(
            "results/visualization/{model}/out_of_sample.png",
            caption="../report/out_of_sample.rst",
            category="Visualization",
            subcategory="{model}: out-of-sample predictions",
        ),
    params:
        model=get_model_config,
        image_set_name=get_visual_image_set,
        image_set=get_visual_image_set_config,
        class_file=get_visual_class_file,
        sources=get_model_image_sets,
        n=VISUALIZATION["noise_images"],
        seed=VISUALIZATION["seed"],
        device=config["device"],
    log:
        "logs/predict_noise/{model}.log",
    benchmark:
        "logs/benchmarks/predict_noise/{model}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/predict_noise.py"


rule maximize_checkpoints:
    input:
        checkpoints=get_run_checkpoints,
        manifest=get_run_manifest,
    output:
        images="results/visualization/training/{run}/class{cls}.npz",
    params:
        models=get_run_checkpoint_models,
        epochs=get_run_epochs,
        image_set_name=get_run_image_set,
        image_set=get_run_image_set_config,
        actmax=get_actmax_settings,
        seed=VISUALIZATION["seed"],
        device=config["device"],
    log:
        "logs/maximize_checkpoints/{run}/class{cls}.log",
    benchmark:
        "logs/benchmarks/maximize_checkpoints/{run}/class{cls}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/maximize_checkpoints.py"


rule plot_training_classes:
    input:
        images=get_run_maximized_classes,
        manifest=get_run_manifest,
        concept_table=get_run_concept_table,
    output:
        png=report(
            "results/visualization/training/{run}.png",
            caption="../report/training_classes.rst",
            category="Visualization",
            subcategory="training",
        ),
        table="results/tables/actmax_training/{run}.parquet",
    params:
        image_set_name=get_run_image_set,
        image_set=get_run_image_set_config,
        seed=VISUALIZATION["seed"],
    log:
        "logs/plot_training_classes/{run}.log",
    benchmark:
        "logs/benchmarks/plot_training_classes/{run}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/plot_training_classes.py"


for _table, _parts in [("fooling", fooling_tables), ("out_of_sample", out_of_sample_tables),
                       ("actmax", actmax_tables), ("actmax_training", actmax_training_tables)]:

    rule:
        name:
            f"concat_{_table}"
        input:
            tables=_parts(),
        output:
            table=f"results/tables/{_table}.parquet",
        log:
            f"logs/concat_{_table}.log",
        benchmark:
            f"logs/benchmarks/concat_{_table}.tsv"
        localrule: True
        threads: 1
        resources:
            mem_mb=2000,
            runtime=5,
        conda:
            "../envs/stats.yaml"
        script:
            f"../scripts/concat_{_table}.py"
