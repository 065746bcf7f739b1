# Image side: model predictions and one HDF5 activation file per (model, image set, layer).


rule predict_classes:
    input:
        manifest="results/manifests/{image_set}.parquet",
        weights=get_model_files,
    output:
        predictions="results/predictions/{model}/{image_set}.parquet",
    params:
        model=get_model_config,
        image_set=get_image_set_config,
        class_file=get_class_file,
        batch_size=config["extraction"]["batch_size"],
        num_workers=config["extraction"]["num_workers"],
        device=config["device"],
    log:
        "logs/predict_classes/{model}/{image_set}.log",
    benchmark:
        "logs/benchmarks/predict_classes/{model}/{image_set}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/predict_classes.py"


rule extract_activations:
    input:
        manifest="results/manifests/{image_set}.parquet",
        images=get_tensor_files,
        weights=get_model_files,
    output:
        h5="results/activations/{model}/{image_set}/{layer}.h5",
    params:
        model=get_model_config,
        image_set=get_image_set_config,
        batch_size=config["extraction"]["batch_size"],
        storage_dtype=config["extraction"]["storage_dtype"],
        compression=config["extraction"]["compression"],
        num_workers=config["extraction"]["num_workers"],
        device=config["device"],
    log:
        "logs/extract_activations/{model}/{image_set}/{layer}.log",
    benchmark:
        "logs/benchmarks/extract_activations/{model}/{image_set}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=120,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/extract_activations.py"
