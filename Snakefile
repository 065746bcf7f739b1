# wordlens: how much of a word-embedding model's semantics does each layer of a CNN carry?
#
# Rule x of rules/<stage>.smk runs scripts/x.py, which calls wordlens.stages.<stage>.x(...);
# rules/common/*.smk hold the config checks, model/layer resolution, input functions and targets.
# Results: results/tables/*.parquet (tidy tables), results/<stage>/... (intermediates).
# Logs: logs/<rule>/<wildcards>.log; per-job run time and memory: logs/benchmarks/.
from snakemake.utils import min_version

min_version("9.1.4")


# config.yaml is the default configuration; a config file given on the command line
# (--configfile) is the whole configuration instead, not merged into the default.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common/config.smk"
include: "rules/common/models.smk"
include: "rules/common/inputs.smk"
include: "rules/common/targets.smk"
include: "rules/data.smk"
include: "rules/extract.smk"
include: "rules/correlate.smk"
include: "rules/two_vs_two.smk"
include: "rules/misclassified.smk"
include: "rules/training.smk"
include: "rules/adversarial.smk"
include: "rules/figures.smk"
include: "rules/visualize.smk"
include: "rules/clustering.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
    localrule: True


rule two_vs_two:
    input:
        "results/tables/two_vs_two.parquet" if MODELS else [],
        "results/tables/concepts.parquet",
    localrule: True


rule misclassified:
    input:
        ["results/tables/misclassified.parquet", "results/tables/mistakes.parquet"] if misclassified_tables() else [],
    localrule: True


rule training:
    input:
        "results/tables/training.parquet" if RUNS else [],
    localrule: True


rule adversarial:
    input:
        adversarial_outputs(),
    localrule: True


rule visualize:
    input:
        visualization_outputs(),
    localrule: True


rule clustering:
    input:
        clustering_outputs(),
    localrule: True


rule figures:
    input:
        figure_outputs(),
    localrule: True


onsuccess:
    print_results()
