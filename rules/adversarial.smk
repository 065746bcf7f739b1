# Adversarial images: targeted MIM attacks, their activations (as an image set of their
# own, through extract_activations), and 1 vs. 2 per layer and similarity category.


rule select_attacks:
    input:
        tables=attack_concept_tables,
        predictions="results/predictions/{model}/{image_set}.parquet",
    output:
        attacks="results/adversarial/{model}/{image_set}/attacks.parquet",
    params:
        class_file=lambda wildcards: class_file(wildcards.image_set),
        image_set=lambda wildcards: IMAGE_SETS[wildcards.image_set],
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


rule attack:
    input:
        attacks="results/adversarial/{model}/{image_set}/attacks.parquet",
        manifest="results/manifests/{image_set}.parquet",
        weights=model_files,
    output:
        images="results/adversarial/{model}/{image_set}/chunks/chunk{chunk}.pt",
        table="results/adversarial/{model}/{image_set}/chunks/chunk{chunk}.parquet",
    params:
        model=lambda wildcards: model_config(wildcards.model),
        image_set=lambda wildcards: IMAGE_SETS[wildcards.image_set],
        class_file=lambda wildcards: class_file(wildcards.image_set),
        epsilon=ADVERSARIAL["epsilon"],
        step_size=ADVERSARIAL["step_size"],
        iterations=ADVERSARIAL["iterations"],
        decay=ADVERSARIAL["decay"],
        norm=str(ADVERSARIAL["norm"]),
        clip_min=ADVERSARIAL["clip_min"],
        clip_max=ADVERSARIAL["clip_max"],
        batch_size=ADVERSARIAL["batch_size"],
        device=config["device"],
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/attack/{model}/{image_set}/chunk{chunk}.log",
    benchmark:
        "logs/benchmarks/attack/{model}/{image_set}/chunk{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/attack.py"


rule gather_attacks:
    input:
        images=expand("results/adversarial/{{model}}/{{image_set}}/chunks/chunk{chunk}.pt", chunk=attack_chunks()),
        tables=expand("results/adversarial/{{model}}/{{image_set}}/chunks/chunk{chunk}.parquet", chunk=attack_chunks()),
        concept_table=lambda wildcards: attack_concept_tables(wildcards)[0],  # readable class names
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


rule adversarial_tests:
    input:
        unpack(concept_tables),
        manifest=lambda wildcards: f"results/manifests/{adversarial_set(wildcards.model, wildcards.image_set)}.parquet",
        predictions="results/predictions/{model}/{image_set}.parquet",
    output:
        tests="results/adversarial/{model}/{image_set}/{ds}/tests.parquet",
    params:
        n_reference=ADVERSARIAL["n_reference"],
        seed=ADVERSARIAL["seed"],
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/adversarial_tests/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/adversarial_tests/{model}/{image_set}/{ds}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/adversarial_tests.py"


rule adversarial_inputs:
    input:
        unpack(concept_tables),
        tests="results/adversarial/{model}/{image_set}/{ds}/tests.parquet",
        h5=lambda wildcards: (
            f"results/activations/{wildcards.model}/{adversarial_set(wildcards.model, wildcards.image_set)}/"
            f"{wildcards.layer}.h5"
        ),
        reference_h5="results/activations/{model}/{image_set}/{layer}.h5",
    output:
        inputs="results/adversarial/{model}/{image_set}/{ds}/{layer}/observed.npz",
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/adversarial_inputs/{model}/{image_set}/{ds}/{layer}.log",
    benchmark:
        "logs/benchmarks/adversarial_inputs/{model}/{image_set}/{ds}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/one_vs_two_inputs.py"


rule adversarial_null:
    input:
        inputs="results/adversarial/{model}/{image_set}/{ds}/{layer}/observed.npz",
    output:
        null="results/adversarial/{model}/{image_set}/{ds}/{layer}/null/chunk{chunk}.npz",
    params:
        perms=chunk_range,
        seed=STATS["seed"],
        dtype=STATS["dtype"],
        device=config["device"],
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/adversarial_null/{model}/{image_set}/{ds}/{layer}/chunk{chunk}.log",
    benchmark:
        "logs/benchmarks/adversarial_null/{model}/{image_set}/{ds}/{layer}/chunk{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/one_vs_two_null.py"


rule gather_adversarial:
    input:
        unpack(gather_adversarial_input),
    output:
        table="results/tables/adversarial/{model}/{image_set}/{ds}.parquet",
    params:
        layers=lambda wildcards: model_layers(wildcards.model),
        blocks=lambda wildcards: layer_blocks(wildcards.model),
        n_permutations=STATS["n_permutations"],
        alpha=STATS["alpha"],
        group="all",
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/gather_adversarial/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/gather_adversarial/{model}/{image_set}/{ds}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/gather_one_vs_two.py"


rule table_adversarial:
    input:
        tables=adversarial_tables(),
    output:
        table="results/tables/adversarial.parquet",
    log:
        "logs/table_adversarial.log",
    benchmark:
        "logs/benchmarks/table_adversarial.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_tables.py"


rule table_adversarial_attacks:
    input:
        tables=attack_tables(),
    output:
        table="results/tables/adversarial_attacks.parquet",
    log:
        "logs/table_adversarial_attacks.log",
    benchmark:
        "logs/benchmarks/table_adversarial_attacks.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_tables.py"
