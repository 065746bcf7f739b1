# Figures (PDF + PNG; architecture diagrams also SVG) from the tidy tables, and the CSV
# tables of the HTML report (`snakemake --report report.html`).


rule plot_two_vs_two:
    input:
        tables=get_model_two_vs_two_tables,
    output:
        pdf="results/figures/two_vs_two/{model}.pdf",
        png=report(
            "results/figures/two_vs_two/{model}.png",
            caption="../report/two_vs_two.rst",
            category="2 vs. 2",
            subcategory="{model}",
        ),
    params:
        about=get_describe_model,
    log:
        "logs/plot_two_vs_two/{model}.log",
    benchmark:
        "logs/benchmarks/plot_two_vs_two/{model}.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/plot_two_vs_two.py"


rule plot_architecture:
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
        model=get_model_config,
        about=get_describe_model,
    log:
        "logs/plot_architecture/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/plot_architecture/{model}/{image_set}/{ds}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/plot_architecture.py"


rule plot_concepts:
    input:
        per_concept=get_concept_layer_accuracy,
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
        layer=get_concept_layer,
        about=get_describe_model,
    log:
        "logs/plot_concepts/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/plot_concepts/{model}/{image_set}/{ds}.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/plot_concepts.py"


rule plot_misclassified:
    input:
        tables=get_model_misclassified_tables,
    output:
        pdf="results/figures/misclassified/{model}.pdf",
        png=report(
            "results/figures/misclassified/{model}.png",
            caption="../report/misclassified.rst",
            category="Misclassified images",
            subcategory="{model}",
        ),
    params:
        about=get_describe_model,
    log:
        "logs/plot_misclassified/{model}.log",
    benchmark:
        "logs/benchmarks/plot_misclassified/{model}.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/plot_misclassified.py"


rule plot_mistake_cosines:
    input:
        table="results/tables/mistakes.parquet",
    output:
        pdf="results/figures/mistake_cosines.pdf",
        png=report("results/figures/mistake_cosines.png", caption="../report/mistake_cosines.rst",
                   category="Misclassified images", subcategory="all networks"),
    params:
        about=describe_run(),
    log:
        "logs/plot_mistake_cosines.log",
    benchmark:
        "logs/benchmarks/plot_mistake_cosines.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/plot_mistake_cosines.py"


rule plot_adversarial:
    input:
        table="results/tables/adversarial/{model}/{image_set}/{ds}.parquet",
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
        about=get_describe_model,
    wildcard_constraints:
        image_set=_alternatives(IMAGE_SETS),
    log:
        "logs/plot_adversarial/{model}/{image_set}/{ds}.log",
    benchmark:
        "logs/benchmarks/plot_adversarial/{model}/{image_set}/{ds}.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/plot_adversarial.py"


rule plot_training:
    input:
        table="results/tables/training.parquet",
    output:
        pdf="results/figures/training.pdf",
        png=report("results/figures/training.png", caption="../report/training.rst", category="Training",
                   subcategory="all runs"),
    params:
        about=describe_run(),
    log:
        "logs/plot_training.log",
    benchmark:
        "logs/benchmarks/plot_training.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/plot_training.py"


rule write_report_tables:
    input:
        unpack(get_report_table_sources),
    output:
        **{
            name: report(path, caption=f"../report/table_{name}.rst", category="Tables", subcategory=name)
            for name, path in report_tables().items()
        },
    params:
        about=describe_run(),
    log:
        "logs/write_report_tables.log",
    benchmark:
        "logs/benchmarks/write_report_tables.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/write_report_tables.py"
