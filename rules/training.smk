# Training runs (checkpoints every N epochs) and 2 vs. 2 tracked per checkpoint.
# Each run has its own rule, because its list of checkpoint files depends on its epochs.

for run_name in RUNS:

    rule:
        name:
            f"train_model_{run_name}"
        input:
            train_files=fashion_mnist_files(RUNS[run_name]["train_set"]),
            test_files=fashion_mnist_files(RUNS[run_name]["test_set"]),
        output:
            checkpoints=[checkpoint_path(run_name, e) for e in run_epochs(run_name)],
            metadata=[f"{checkpoint_path(run_name, e)}.json" for e in run_epochs(run_name)],
            log=f"results/training/{run_name}/log.parquet",
        params:
            run=run_name,
            run_cfg=RUNS[run_name],
            train_set=[RUNS[run_name]["train_set"], IMAGE_SETS[RUNS[run_name]["train_set"]]],
            test_set=[RUNS[run_name]["test_set"], IMAGE_SETS[RUNS[run_name]["test_set"]]],
            checkpoint_dir=lambda wildcards, output: str(Path(output.checkpoints[0]).parent),
            listing=[image_set_listing(RUNS[run_name][k]) for k in ("train_set", "test_set")],
            device=config["device"],
        log:
            f"logs/train_model/{run_name}.log",
        benchmark:
            f"logs/benchmarks/train_model/{run_name}.tsv"
        threads: 2
        resources:
            mem_mb=16000,
            runtime=30 + 2 * RUNS[run_name]["epochs"],
            gpu=1,
        conda:
            "../envs/torch.yaml"
        script:
            "../scripts/train_model.py"


rule gather_training:
    input:
        log="results/training/{run}/log.parquet",
        tables=get_checkpoint_tables,
    output:
        table="results/tables/training/{run}.parquet",
    params:
        epochs=get_checkpoint_epochs,
        permuted=lambda wildcards: RUNS[wildcards.run]["permute_labels"],
    log:
        "logs/gather_training/{run}.log",
    benchmark:
        "logs/benchmarks/gather_training/{run}.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/gather_training.py"


rule concat_training:
    input:
        tables=training_tables(),
    output:
        table="results/tables/training.parquet",
    log:
        "logs/concat_training.log",
    benchmark:
        "logs/benchmarks/concat_training.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_training.py"
