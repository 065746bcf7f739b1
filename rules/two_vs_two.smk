# 2 vs. 2: observed per layer, permutation nulls in fixed-size chunks, gathered with BHY.


rule score_two_vs_two:
    input:
        unpack(get_concept_tables),
        corr=get_correlation_files,
    output:
        observed="results/two_vs_two/{model}/{image_set}/{ds}/{layer}/observed.parquet",
        concepts="results/two_vs_two/{model}/{image_set}/{ds}/{layer}/concepts.parquet",
    log:
        "logs/score_two_vs_two/{model}/{image_set}/{ds}/{layer}.log",
    benchmark:
        "logs/benchmarks/score_two_vs_two/{model}/{image_set}/{ds}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/score_two_vs_two.py"


rule permute_two_vs_two:
    input:
        unpack(get_concept_tables),
        corr=get_correlation_files,
    output:
        null="results/two_vs_two/{model}/{image_set}/{ds}/{layer}/null/chunk{chunk}.npz",
    params:
        start=get_chunk_start,
        stop=get_chunk_stop,
        seed=STATS["seed"],
        dtype=STATS["dtype"],
        device=config["device"],
    log:
        "logs/permute_two_vs_two/{model}/{image_set}/{ds}/{layer}/chunk{chunk}.log",
    benchmark:
        "logs/benchmarks/permute_two_vs_two/{model}/{image_set}/{ds}/{layer}/chunk{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/permute_two_vs_two.py"


rule gather_two_vs_two:
    input:
        unpack(get_two_vs_two_results),
    output:
        table="results/tables/two_vs_two/{model}/{image_set}/{ds}.parquet",
    params:
        layers=get_layers,
        blocks=get_blocks,
        n_permutations=STATS["n_permutations"],
        alpha=STATS["alpha"],
    log:
        "logs/gather_two_vs_two/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/gather_two_vs_two/{model}/{image_set}/{ds}.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/gather_two_vs_two.py"


rule concat_two_vs_two:
    input:
        tables=two_vs_two_tables(),
    output:
        table="results/tables/two_vs_two.parquet",
    log:
        "logs/concat_two_vs_two.log",
    benchmark:
        "logs/benchmarks/concat_two_vs_two.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_two_vs_two.py"
