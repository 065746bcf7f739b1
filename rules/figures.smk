# Figures (PDF + PNG; architecture diagrams also SVG) from the tidy tables, and the CSV
# tables of the HTML report (`snakemake --report report.html`).


rule figure_two_vs_two:
    input:
        tables=lambda wildcards: [
            f"results/tables/two_vs_two/{wildcards.model}/{s}/{d}.parquet"
            for s in MODELS[wildcards.model]["image_sets"]
            for d in DS_MODELS
        ],
    output:
        pdf="results/figures/two_vs_two/{model}.pdf",
        png=report(
            "results/figures/two_vs_two/{model}.png",
            caption="../report/two_vs_two.rst",
            category="2 vs. 2",
            subcategory="{model}",
        ),
    params:
        about=lambda wildcards: describe_run(wildcards.model),
    log:
        "logs/figure_two_vs_two/{model}.log",
    benchmark:
        "logs/benchmarks/figure_two_vs_two/{model}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/figure_two_vs_two.py"


rule figure_architecture:
    input:
        table="results/tables/two_vs_two/{model}/{image_set}/{ds}.parquet",
    output:
        svg=report(
            "results/figures/architecture/{model}/{image_set}/{ds}.svg",
            caption="../report/architecture.rst",
            category="Architecture",
            subcategory="{model}",
            labels={"model": "{model}", "image set": "{image_set}", "DS model": "{ds}"},
        ),
        pdf="results/figures/architecture/{model}/{image_set}/{ds}.pdf",
        png="results/figures/architecture/{model}/{image_set}/{ds}.png",
    params:
        model=lambda wildcards: model_config(wildcards.model),
        about=lambda wildcards: describe_run(wildcards.model),
    log:
        "logs/figure_architecture/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/figure_architecture/{model}/{image_set}/{ds}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/figure_architecture.py"


rule figure_concepts:
    input:
        per_concept=lambda wildcards: (
            f"results/two_vs_two/{wildcards.model}/{wildcards.image_set}/{wildcards.ds}/"
            f"{concept_layer(wildcards.model)}/concepts.parquet"
        ),
        concept_table="results/concepts/{image_set}/{ds}.parquet",
    output:
        pdf="results/figures/concepts/{model}/{image_set}/{ds}.pdf",
        png=report(
            "results/figures/concepts/{model}/{image_set}/{ds}.png",
            caption="../report/concepts.rst",
            category="Concepts",
            subcategory="{model}",
            labels={"model": "{model}", "image set": "{image_set}", "DS model": "{ds}"},
        ),
    params:
        layer=lambda wildcards: concept_layer(wildcards.model),
        about=lambda wildcards: describe_run(wildcards.model),
    log:
        "logs/figure_concepts/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/figure_concepts/{model}/{image_set}/{ds}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/figure_concepts.py"


rule figure_misclassified:
    input:
        tables=lambda wildcards: [
            f"results/tables/misclassified/{wildcards.model}/{s}/{d}.parquet"
            for s in MODELS[wildcards.model]["image_sets"]
            for d in DS_MODELS
        ],
    output:
        pdf="results/figures/misclassified/{model}.pdf",
        png=report(
            "results/figures/misclassified/{model}.png",
            caption="../report/misclassified.rst",
            category="Misclassified images",
            subcategory="{model}",
        ),
    params:
        about=lambda wildcards: describe_run(wildcards.model),
    log:
        "logs/figure_misclassified/{model}.log",
    benchmark:
        "logs/benchmarks/figure_misclassified/{model}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/figure_one_vs_two.py"


rule figure_mistake_cosines:
    input:
        table="results/tables/mistakes.parquet",
    output:
        pdf="results/figures/mistake_cosines.pdf",
        png=report("results/figures/mistake_cosines.png", caption="../report/mistake_cosines.rst",
                   category="Misclassified images", subcategory="all networks"),
    params:
        about=describe_run(),
    log:
        "logs/figure_mistake_cosines.log",
    benchmark:
        "logs/benchmarks/figure_mistake_cosines.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/figure_mistake_cosines.py"


rule figure_adversarial:
    input:
        tables="results/tables/adversarial/{model}/{image_set}/{ds}.parquet",
    output:
        pdf="results/figures/adversarial/{model}/{image_set}/{ds}.pdf",
        png=report(
            "results/figures/adversarial/{model}/{image_set}/{ds}.png",
            caption="../report/adversarial.rst",
            category="Adversarial images",
            subcategory="{model}",
            labels={"model": "{model}", "image set": "{image_set}", "DS model": "{ds}"},
        ),
    params:
        about=lambda wildcards: describe_run(wildcards.model),
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/figure_adversarial/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/figure_adversarial/{model}/{image_set}/{ds}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/figure_one_vs_two.py"


rule figure_training:
    input:
        table="results/tables/training.parquet",
    output:
        pdf="results/figures/training.pdf",
        png=report("results/figures/training.png", caption="../report/training.rst", category="Training",
                   subcategory="all runs"),
    params:
        about=describe_run(),
    log:
        "logs/figure_training.log",
    benchmark:
        "logs/benchmarks/figure_training.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/figure_training.py"


rule report_tables:
    input:
        unpack(report_table_inputs),
    output:
        **{
            name: report(path, caption=f"../report/table_{name}.rst", category="Tables", subcategory=name)
            for name, path in report_tables().items()
        },
    params:
        about=describe_run(),
    log:
        "logs/report_tables.log",
    benchmark:
        "logs/benchmarks/report_tables.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/report_tables.py"
