# Misclassified images: 1 vs. 2 per layer against correctly classified reference concepts.


rule select_mistakes:
    input:
        unpack(concept_tables),
        manifest="results/manifests/{image_set}.parquet",
        predictions="results/predictions/{model}/{image_set}.parquet",
    output:
        mistakes="results/misclassified/{model}/{image_set}/{ds}/mistakes.parquet",
    params:
        n_reference=config["misclassified"]["n_reference"],
        seed=config["misclassified"]["seed"],
        class_file=lambda wildcards: class_file(wildcards.image_set),
        image_set=lambda wildcards: IMAGE_SETS[wildcards.image_set],
    log:
        "logs/select_mistakes/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/select_mistakes/{model}/{image_set}/{ds}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/select_mistakes.py"


rule one_vs_two_inputs:
    input:
        unpack(concept_tables),
        mistakes="results/misclassified/{model}/{image_set}/{ds}/mistakes.parquet",
        h5="results/activations/{model}/{image_set}/{layer}.h5",
    output:
        inputs="results/misclassified/{model}/{image_set}/{ds}/{layer}/observed.npz",
    log:
        "logs/one_vs_two_inputs/{model}/{image_set}/{ds}/{layer}.log",
    benchmark:
        "logs/benchmarks/one_vs_two_inputs/{model}/{image_set}/{ds}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/one_vs_two_inputs.py"


rule one_vs_two_null:
    input:
        inputs="results/misclassified/{model}/{image_set}/{ds}/{layer}/observed.npz",
    output:
        null="results/misclassified/{model}/{image_set}/{ds}/{layer}/null/chunk{chunk}.npz",
    params:
        perms=chunk_range,
        seed=STATS["seed"],
        dtype=STATS["dtype"],
        device=config["device"],
    log:
        "logs/one_vs_two_null/{model}/{image_set}/{ds}/{layer}/chunk{chunk}.log",
    benchmark:
        "logs/benchmarks/one_vs_two_null/{model}/{image_set}/{ds}/{layer}/chunk{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/one_vs_two_null.py"


rule gather_one_vs_two:
    input:
        unpack(gather_one_vs_two_input),
    output:
        table="results/tables/misclassified/{model}/{image_set}/{ds}.parquet",
    params:
        layers=lambda wildcards: model_layers(wildcards.model),
        blocks=lambda wildcards: layer_blocks(wildcards.model),
        n_permutations=STATS["n_permutations"],
        alpha=STATS["alpha"],
    log:
        "logs/gather_one_vs_two/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/gather_one_vs_two/{model}/{image_set}/{ds}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/gather_one_vs_two.py"


rule table_misclassified:
    input:
        tables=misclassified_tables(),
    output:
        table="results/tables/misclassified.parquet",
    log:
        "logs/table_misclassified.log",
    benchmark:
        "logs/benchmarks/table_misclassified.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_tables.py"


rule table_mistakes:
    input:
        tables=mistake_tables(),
    output:
        table="results/tables/mistakes.parquet",
    params:
        label_columns={
            "model": [m for m, s, d in analyses() if MODELS[m].get("misclassified")],
            "image_set": [s for m, s, d in analyses() if MODELS[m].get("misclassified")],
            "ds_model": [d for m, s, d in analyses() if MODELS[m].get("misclassified")],
        },
    log:
        "logs/table_mistakes.log",
    benchmark:
        "logs/benchmarks/table_mistakes.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_tables.py"
