# Inputs: Fashion-MNIST (fetched when asked), concept tables, sampling manifests.


rule fetch_fashion_mnist:
    output:
        files=expand("{{root}}/FashionMNIST/raw/{f}", f=FASHION_MNIST_FILES),
    params:
        root=lambda wildcards: wildcards.root,
    log:
        "logs/fetch_fashion_mnist/{root}.log",
    benchmark:
        "logs/benchmarks/fetch_fashion_mnist/{root}.tsv"
    wildcard_constraints:
        root=_alternatives({s["root"] for s in IMAGE_SETS.values() if s.get("fetch")}),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/fetch_fashion_mnist.py"


rule match_concepts:
    input:
        files=get_image_set_files,
        vectors=get_ds_model_files,
    output:
        table="results/concepts/{image_set}/{ds}.parquet",
        summary="results/concepts/{image_set}/{ds}.summary.parquet",
    params:
        image_set=get_image_set_config,
        ds=lambda wildcards: DS_MODELS[wildcards.ds],
        class_file=get_class_file,
        cache_dir="results/ds_cache",
        device=config["device"],
    log:
        "logs/match_concepts/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/match_concepts/{image_set}/{ds}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/words.yaml"
    script:
        "../scripts/match_concepts.py"


rule sample_images:
    input:
        files=get_image_set_files,
    output:
        manifest="results/manifests/{image_set}.parquet",
    params:
        image_set=get_image_set_config,
        listing=get_image_set_listing,
        class_file=get_class_file,
        images_per_concept=config["sampling"]["images_per_concept"],
        seed=config["sampling"]["seed"],
        on_error=config["sampling"]["on_error"],
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),  # adversarial image sets get their manifest from gather_attacks
    log:
        "logs/sample_images/{image_set}.log",
    benchmark:
        "logs/benchmarks/sample_images/{image_set}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/sample_images.py"


rule concat_concepts:
    input:
        summaries=concept_summaries(),
    output:
        table="results/tables/concepts.parquet",
    params:
        image_sets=[Path(p).parent.name for p in concept_summaries()],
    log:
        "logs/concat_concepts.log",
    benchmark:
        "logs/benchmarks/concat_concepts.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_concepts.py"
