# Adversarial images: targeted MIM attacks, their activations (as an image set of their
# own, through extract_activations), and 1 vs. 2 per layer and similarity category.


rule select_attacks:
    input:
        concept_tables=get_attack_concept_tables,
        predictions="results/predictions/{model}/{image_set}.parquet",
    output:
        attacks="results/adversarial/{model}/{image_set}/attacks.parquet",
    params:
        class_file=get_class_file,
        image_set=get_image_set_config,
        n_sources=ADVERSARIAL["n_sources"],
        n_targets=ADVERSARIAL["n_targets"],
        sources_per_job=ADVERSARIAL["sources_per_job"],
        seed=ADVERSARIAL["seed"],
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/select_attacks/{model}/{image_set}.log",
    benchmark:
        "logs/benchmarks/select_attacks/{model}/{image_set}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/select_attacks.py"


rule attack_images:
    input:
        attacks="results/adversarial/{model}/{image_set}/attacks.parquet",
        manifest="results/manifests/{image_set}.parquet",
        weights=get_model_files,
    output:
        images="results/adversarial/{model}/{image_set}/chunks/chunk{chunk}.pt",
        table="results/adversarial/{model}/{image_set}/chunks/chunk{chunk}.parquet",
    params:
        model=get_model_config,
        image_set=get_image_set_config,
        class_file=get_class_file,
        attack=attack_settings(),
        device=config["device"],
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/attack_images/{model}/{image_set}/chunk{chunk}.log",
    benchmark:
        "logs/benchmarks/attack_images/{model}/{image_set}/chunk{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/attack_images.py"


rule gather_attacks:
    input:
        chunk_images=expand("results/adversarial/{{model}}/{{image_set}}/chunks/chunk{chunk}.pt", chunk=attack_chunks()),
        chunk_tables=expand(
            "results/adversarial/{{model}}/{{image_set}}/chunks/chunk{chunk}.parquet", chunk=attack_chunks()
        ),
        concept_table=get_attack_concept_table,  # readable class names
    output:
        images="results/adversarial/{model}/{image_set}/images.pt",
        table="results/tables/adversarial_attacks/{model}/{image_set}.parquet",
        manifest="results/manifests/{image_set}.mim.{model}.parquet",
        grid=report(
            "results/adversarial/{model}/{image_set}/grid.png",
            caption="../report/adversarial_grid.rst",
            category="Adversarial images",
            subcategory="{model}",
        ),
    params:
        adv_set=lambda wildcards: adversarial_set(wildcards.model, wildcards.image_set),
        grid_sources=ADVERSARIAL["grid_sources"],
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/gather_attacks/{model}/{image_set}.log",
    benchmark:
        "logs/benchmarks/gather_attacks/{model}/{image_set}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=20,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/gather_attacks.py"


rule select_adversarial:
    input:
        unpack(get_concept_tables),
        manifest=get_adversarial_manifest,
        predictions="results/predictions/{model}/{image_set}.parquet",
    output:
        tests="results/adversarial/{model}/{image_set}/{ds}/tests.parquet",
    params:
        n_reference=ADVERSARIAL["n_reference"],
        seed=ADVERSARIAL["seed"],
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/select_adversarial/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/select_adversarial/{model}/{image_set}/{ds}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/select_adversarial.py"


rule score_adversarial:
    input:
        unpack(get_concept_tables),
        tests="results/adversarial/{model}/{image_set}/{ds}/tests.parquet",
        h5=get_adversarial_activations,
        reference_h5="results/activations/{model}/{image_set}/{layer}.h5",
    output:
        observed="results/adversarial/{model}/{image_set}/{ds}/{layer}/observed.npz",
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/score_adversarial/{model}/{image_set}/{ds}/{layer}.log",
    benchmark:
        "logs/benchmarks/score_adversarial/{model}/{image_set}/{ds}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/score_adversarial.py"


rule permute_adversarial:
    input:
        observed="results/adversarial/{model}/{image_set}/{ds}/{layer}/observed.npz",
    output:
        null="results/adversarial/{model}/{image_set}/{ds}/{layer}/null/chunk{chunk}.npz",
    params:
        start=get_chunk_start,
        stop=get_chunk_stop,
        seed=STATS["seed"],
        dtype=STATS["dtype"],
        device=config["device"],
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/permute_adversarial/{model}/{image_set}/{ds}/{layer}/chunk{chunk}.log",
    benchmark:
        "logs/benchmarks/permute_adversarial/{model}/{image_set}/{ds}/{layer}/chunk{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/permute_adversarial.py"


rule gather_adversarial:
    input:
        unpack(get_adversarial_results),
    output:
        table="results/tables/adversarial/{model}/{image_set}/{ds}.parquet",
    params:
        layers=get_layers,
        blocks=get_blocks,
        n_permutations=STATS["n_permutations"],
        alpha=STATS["alpha"],
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/gather_adversarial/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/gather_adversarial/{model}/{image_set}/{ds}.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/gather_adversarial.py"


rule concat_adversarial:
    input:
        tables=adversarial_tables(),
    output:
        table="results/tables/adversarial.parquet",
    log:
        "logs/concat_adversarial.log",
    benchmark:
        "logs/benchmarks/concat_adversarial.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_adversarial.py"


rule concat_attacks:
    input:
        tables=attack_tables(),
    output:
        table="results/tables/adversarial_attacks.parquet",
    log:
        "logs/concat_attacks.log",
    benchmark:
        "logs/benchmarks/concat_attacks.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_attacks.py"
