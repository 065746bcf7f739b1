# 2 vs. 2: observed per layer, permutation nulls in fixed-size chunks, gathered with BHY.


rule two_vs_two_observed:
    input:
        unpack(concept_tables),
        corr=correlation_files,
    output:
        observed="results/two_vs_two/{model}/{image_set}/{ds}/{layer}/observed.parquet",
        concepts="results/two_vs_two/{model}/{image_set}/{ds}/{layer}/concepts.parquet",
    log:
        "logs/two_vs_two_observed/{model}/{image_set}/{ds}/{layer}.log",
    benchmark:
        "logs/benchmarks/two_vs_two_observed/{model}/{image_set}/{ds}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/two_vs_two_observed.py"


rule two_vs_two_null:
    input:
        unpack(concept_tables),
        corr=correlation_files,
    output:
        null="results/two_vs_two/{model}/{image_set}/{ds}/{layer}/null/chunk{chunk}.npz",
    params:
        perms=chunk_range,
        seed=STATS["seed"],
        dtype=STATS["dtype"],
        device=config["device"],
    log:
        "logs/two_vs_two_null/{model}/{image_set}/{ds}/{layer}/chunk{chunk}.log",
    benchmark:
        "logs/benchmarks/two_vs_two_null/{model}/{image_set}/{ds}/{layer}/chunk{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/two_vs_two_null.py"


rule gather_two_vs_two:
    input:
        unpack(gather_two_vs_two_input),
    output:
        table="results/tables/two_vs_two/{model}/{image_set}/{ds}.parquet",
    params:
        layers=lambda wildcards: model_layers(wildcards.model),
        blocks=lambda wildcards: layer_blocks(wildcards.model),
        n_permutations=STATS["n_permutations"],
        alpha=STATS["alpha"],
    log:
        "logs/gather_two_vs_two/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/gather_two_vs_two/{model}/{image_set}/{ds}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/gather_two_vs_two.py"


rule table_two_vs_two:
    input:
        tables=two_vs_two_tables(),
    output:
        table="results/tables/two_vs_two.parquet",
    log:
        "logs/table_two_vs_two.log",
    benchmark:
        "logs/benchmarks/table_two_vs_two.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_tables.py"
