# Concept × concept correlation matrices, one per (model, image set, layer, group).


rule correlate_layer:
    input:
        h5="results/activations/{model}/{image_set}/{layer}.h5",
        manifest="results/manifests/{image_set}.parquet",
    output:
        corr=expand("results/correlations/{{model}}/{{image_set}}/{{layer}}/group{group}.npz", group=GROUPS),
    params:
        device=config["device"],
    log:
        "logs/correlate_layer/{model}/{image_set}/{layer}.log",
    benchmark:
        "logs/benchmarks/correlate_layer/{model}/{image_set}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/correlate_layer.py"
