# wordlens: how much of a word-embedding model's semantics does each layer of a CNN carry?
# The rules live in rules/<stage>.smk, the numerics in the wordlens package.
#
# Results: results/tables/*.parquet (tidy tables), results/<stage>/... (intermediates).
# Logs: logs/<rule>/<wildcards>.log; per-job run time and memory: logs/benchmarks/.
from snakemake.utils import min_version

min_version("9.1.4")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/extract.smk"
include: "rules/correlate.smk"
include: "rules/stats.smk"
include: "rules/misclassified.smk"
include: "rules/training.smk"
include: "rules/adversarial.smk"
include: "rules/figures.smk"


localrules:
    all,
    two_vs_two,
    misclassified,
    training,
    table_concepts,
    table_two_vs_two,
    table_misclassified,
    table_mistakes,
    table_training,
    training_table,
    gather_two_vs_two,
    gather_one_vs_two,
    adversarial,
    table_adversarial,
    table_adversarial_attacks,
    gather_adversarial,
    figures,
    figure_two_vs_two,
    figure_concepts,
    figure_misclassified,
    figure_mistake_cosines,
    figure_adversarial,
    figure_training,
    report_tables,


rule all:
    default_target: True
    input:
        get_final_output(),


rule two_vs_two:
    input:
        "results/tables/two_vs_two.parquet" if MODELS else [],
        "results/tables/concepts.parquet",


rule misclassified:
    input:
        ["results/tables/misclassified.parquet", "results/tables/mistakes.parquet"] if misclassified_tables() else [],


rule training:
    input:
        "results/tables/training.parquet" if RUNS else [],


rule adversarial:
    input:
        adversarial_outputs(),


rule figures:
    input:
        figure_outputs(),


onsuccess:
    print_results()
