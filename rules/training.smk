# Training runs (checkpoints every N epochs) and 2 vs. 2 tracked per checkpoint.
# Each run has its own rule, because its list of checkpoint files depends on its epochs.

for run_name in RUNS:

    rule:
        name:
            f"train_model_{run_name}"
        input:
            train_files=image_set_files_of(RUNS[run_name]["train_set"]),
            test_files=image_set_files_of(RUNS[run_name]["test_set"]),
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


rule training_table:
    input:
        log="results/training/{run}/log.parquet",
        tables=lambda wildcards: [
            f"results/tables/two_vs_two/{checkpoint_model_id(wildcards.run, e)}/{s}/{d}.parquet"
            for e in run_epochs(wildcards.run)
            for s in training_image_sets(wildcards.run)
            for d in training_ds_models()
        ],
    output:
        table="results/tables/training/{run}.parquet",
    params:
        epochs=lambda wildcards: [
            e
            for e in run_epochs(wildcards.run)
            for s in training_image_sets(wildcards.run)
            for d in training_ds_models()
        ],
        permuted=lambda wildcards: RUNS[wildcards.run]["permute_labels"],
    log:
        "logs/training_table/{run}.log",
    benchmark:
        "logs/benchmarks/training_table/{run}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/training_table.py"


rule table_training:
    input:
        tables=training_tables(),
    output:
        table="results/tables/training.parquet",
    log:
        "logs/table_training.log",
    benchmark:
        "logs/benchmarks/table_training.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_tables.py"
