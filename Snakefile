# wordlens: how much of a word-embedding model's semantics does each layer of a CNN carry?
# The rules live in rules/<stage>.smk, the numerics in the wordlens package.
from snakemake.utils import min_version

min_version("9.1.4")


configfile: "config.yaml"


include: "rules/common.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
