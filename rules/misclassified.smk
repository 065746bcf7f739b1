# Misclassified images: 1 vs. 2 per layer against correctly classified reference concepts.


rule select_mistakes:
    input:
        unpack(get_concept_tables),
        manifest="results/manifests/{image_set}.parquet",
        predictions="results/predictions/{model}/{image_set}.parquet",
    output:
        mistakes="results/misclassified/{model}/{image_set}/{ds}/mistakes.parquet",
    params:
        n_reference=config["misclassified"]["n_reference"],
        seed=config["misclassified"]["seed"],
        class_file=get_class_file,
        image_set=get_image_set_config,
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


rule score_misclassified:
    input:
        unpack(get_concept_tables),
        mistakes="results/misclassified/{model}/{image_set}/{ds}/mistakes.parquet",
        h5="results/activations/{model}/{image_set}/{layer}.h5",
    output:
        observed="results/misclassified/{model}/{image_set}/{ds}/{layer}/observed.npz",
    log:
        "logs/score_misclassified/{model}/{image_set}/{ds}/{layer}.log",
    benchmark:
        "logs/benchmarks/score_misclassified/{model}/{image_set}/{ds}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/score_misclassified.py"


rule permute_misclassified:
    input:
        observed="results/misclassified/{model}/{image_set}/{ds}/{layer}/observed.npz",
    output:
        null="results/misclassified/{model}/{image_set}/{ds}/{layer}/null/chunk{chunk}.npz",
    params:
        start=get_chunk_start,
        stop=get_chunk_stop,
        seed=STATS["seed"],
        dtype=STATS["dtype"],
        device=config["device"],
    log:
        "logs/permute_misclassified/{model}/{image_set}/{ds}/{layer}/chunk{chunk}.log",
    benchmark:
        "logs/benchmarks/permute_misclassified/{model}/{image_set}/{ds}/{layer}/chunk{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/permute_misclassified.py"


rule gather_misclassified:
    input:
        unpack(get_misclassified_results),
    output:
        table="results/tables/misclassified/{model}/{image_set}/{ds}.parquet",
    params:
        layers=get_layers,
        blocks=get_blocks,
        n_permutations=STATS["n_permutations"],
        alpha=STATS["alpha"],
    log:
        "logs/gather_misclassified/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/gather_misclassified/{model}/{image_set}/{ds}.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/gather_misclassified.py"


rule concat_misclassified:
    input:
        tables=misclassified_tables(),
    output:
        table="results/tables/misclassified.parquet",
    log:
        "logs/concat_misclassified.log",
    benchmark:
        "logs/benchmarks/concat_misclassified.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_misclassified.py"


rule concat_mistakes:
    input:
        tables=mistake_tables(),
    output:
        table="results/tables/mistakes.parquet",
    params:
        labels={
            "model": [m for m, s, d in misclassified_analyses()],
            "image_set": [s for m, s, d in misclassified_analyses()],
            "ds_model": [d for m, s, d in misclassified_analyses()],
        },
    log:
        "logs/concat_mistakes.log",
    benchmark:
        "logs/benchmarks/concat_mistakes.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_mistakes.py"
