# Category clustering (Dai, "What do CNN neurons learn", §3): per layer a hierarchy over
# the concepts' representative vectors (Algorithm 1) and its minimum spanning tree, its
# agreement with the word space, WordNet or a hierarchy file (cophenetic correlation and
# Fowlkes-Mallows, permutation nulls in chunks, BHY across layers), UMAP maps, and filter
# prediction trees of single classes (Algorithm 2).


rule cluster_layer:
    input:
        manifest="results/manifests/{image_set}.parquet",
        h5="results/activations/{model}/{image_set}/{layer}.h5",
        concept_table=get_first_concept_table,  # readable names in the trees
    output:
        vectors="results/clustering/{model}/{image_set}/{layer}/vectors.npz",
        newick="results/clustering/{model}/{image_set}/{layer}/tree.nwk",
        json="results/clustering/{model}/{image_set}/{layer}/tree.json",
    params:
        representation=CLUSTERING["representation"],
        distance=CLUSTERING["distance"],
        linkage=CLUSTERING["linkage"],
        keep_vectors=get_keep_vectors,
    log:
        "logs/cluster_layer/{model}/{image_set}/{layer}.log",
    benchmark:
        "logs/benchmarks/cluster_layer/{model}/{image_set}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/cluster_layer.py"


rule fetch_wordnet:
    output:
        data_noun=f"{CLUSTERING['wordnet_root']}/dict/data.noun",
    params:
        root=lambda wildcards, output: str(Path(output.data_noun).parent.parent),
    log:
        "logs/fetch_wordnet.log",
    benchmark:
        "logs/benchmarks/fetch_wordnet.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/fetch_wordnet.py"


rule build_reference:
    input:
        unpack(get_reference_inputs),
    output:
        reference="results/clustering/references/{image_set}/{reference}.npz",
        newick="results/clustering/references/{image_set}/{reference}.nwk",
        json="results/clustering/references/{image_set}/{reference}.json",
    params:
        kind=get_reference_kind,
        distance=CLUSTERING["distance"],
        tree_distance=CLUSTERING["tree_distance"],
        linkage=CLUSTERING["linkage"],
    log:
        "logs/build_reference/{image_set}/{reference}.log",
    benchmark:
        "logs/benchmarks/build_reference/{image_set}/{reference}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/build_reference.py"


rule score_clustering:
    input:
        vectors="results/clustering/{model}/{image_set}/{layer}/vectors.npz",
        reference="results/clustering/references/{image_set}/{reference}.npz",
    output:
        observed="results/clustering/{model}/{image_set}/{reference}/{layer}/observed.parquet",
    params:
        linkage=CLUSTERING["linkage"],
        cuts=CLUSTERING["cuts"],
    log:
        "logs/score_clustering/{model}/{image_set}/{reference}/{layer}.log",
    benchmark:
        "logs/benchmarks/score_clustering/{model}/{image_set}/{reference}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/score_clustering.py"


rule permute_clustering:
    input:
        vectors="results/clustering/{model}/{image_set}/{layer}/vectors.npz",
        reference="results/clustering/references/{image_set}/{reference}.npz",
    output:
        null="results/clustering/{model}/{image_set}/{reference}/{layer}/null/chunk{chunk}.npz",
    params:
        linkage=CLUSTERING["linkage"],
        cuts=CLUSTERING["cuts"],
        start=get_cluster_chunk_start,
        stop=get_cluster_chunk_stop,
        seed=STATS["seed"],
    log:
        "logs/permute_clustering/{model}/{image_set}/{reference}/{layer}/chunk{chunk}.log",
    benchmark:
        "logs/benchmarks/permute_clustering/{model}/{image_set}/{reference}/{layer}/chunk{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/permute_clustering.py"


rule gather_clustering:
    input:
        unpack(get_clustering_results),
    output:
        table="results/tables/clustering/{model}/{image_set}/{reference}.parquet",
    params:
        layers=get_cluster_layers,
        blocks=get_cluster_blocks,
        n_permutations=get_cluster_permutations,
        alpha=STATS["alpha"],
    log:
        "logs/gather_clustering/{model}/{image_set}/{reference}.log",
    benchmark:
        "logs/benchmarks/gather_clustering/{model}/{image_set}/{reference}.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/gather_clustering.py"


rule concat_clustering:
    input:
        tables=clustering_tables(),
    output:
        table="results/tables/clustering.parquet",
    log:
        "logs/concat_clustering.log",
    benchmark:
        "logs/benchmarks/concat_clustering.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/concat_clustering.py"


rule plot_clustering:
    input:
        tables=get_model_clustering_tables,
        two_vs_two=get_model_two_vs_two_tables,
    output:
        png=report(
            "results/figures/clustering/{model}.png",
            caption="../report/clustering.rst",
            category="Clustering",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "agreement through the layers"},
        ),
        pdf="results/figures/clustering/{model}.pdf",
    params:
        about=get_describe_model,
    log:
        "logs/plot_clustering/{model}.log",
    benchmark:
        "logs/benchmarks/plot_clustering/{model}.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/stats.yaml"
    script:
        "../scripts/plot_clustering.py"


rule represent_noise:
    input:
        manifest="results/manifests/{image_set}.parquet",
        weights=get_model_files,
    output:
        vector="results/clustering/{model}/{image_set}/{layer}/noise.npz",
    params:
        model=get_model_config,
        image_set=get_image_set_config,
        representation=CLUSTERING["representation"],
        n=CLUSTERING["noise_images"],
        seed=CLUSTERING["seed"],
        device=config["device"],
    log:
        "logs/represent_noise/{model}/{image_set}/{layer}.log",
    benchmark:
        "logs/benchmarks/represent_noise/{model}/{image_set}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=1,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/represent_noise.py"


rule plot_taxonomy:
    input:
        unpack(get_taxonomy_inputs),
    output:
        dendrogram=report(
            "results/clustering/{model}/{image_set}/{layer}/dendrogram.png",
            caption="../report/dendrogram.rst",
            category="Clustering",
            subcategory="{model}: {layer}",
            labels={"model": "{model}", "layer": "{layer}", "figure": "dendrogram"},
        ),
        mst=report(
            "results/clustering/{model}/{image_set}/{layer}/mst.png",
            caption="../report/mst.rst",
            category="Clustering",
            subcategory="{model}: {layer}",
            labels={"model": "{model}", "layer": "{layer}", "figure": "minimum spanning tree"},
        ),
        umap=report(
            "results/clustering/{model}/{image_set}/{layer}/umap.png",
            caption="../report/umap.rst",
            category="Clustering",
            subcategory="{model}: {layer}",
            labels={"model": "{model}", "layer": "{layer}", "figure": "UMAP"},
        ),
        mst_svg="results/clustering/{model}/{image_set}/{layer}/mst.svg",
        dendrogram_pdf="results/clustering/{model}/{image_set}/{layer}/dendrogram.pdf",  # every page
    params:
        max_leaves=CLUSTERING["max_leaves"],
        seed=CLUSTERING["seed"],
    log:
        "logs/plot_taxonomy/{model}/{image_set}/{layer}.log",
    benchmark:
        "logs/benchmarks/plot_taxonomy/{model}/{image_set}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/clustering.yaml"
    script:
        "../scripts/plot_taxonomy.py"


rule plot_noise_taxonomy:
    input:
        vectors="results/clustering/{model}/{image_set}/{layer}/vectors.npz",
        noise="results/clustering/{model}/{image_set}/{layer}/noise.npz",
        concept_table=get_first_concept_table,
    output:
        dendrogram=report(
            "results/clustering/{model}/{image_set}/{layer}/dendrogram_noise.png",
            caption="../report/dendrogram_noise.rst",
            category="Clustering",
            subcategory="{model}: {layer}",
            labels={"model": "{model}", "layer": "{layer}", "figure": "dendrogram with noise"},
        ),
        mst=report(
            "results/clustering/{model}/{image_set}/{layer}/mst_noise.png",
            caption="../report/mst_noise.rst",
            category="Clustering",
            subcategory="{model}: {layer}",
            labels={"model": "{model}", "layer": "{layer}", "figure": "minimum spanning tree with noise"},
        ),
        mst_svg="results/clustering/{model}/{image_set}/{layer}/mst_noise.svg",
        dendrogram_pdf="results/clustering/{model}/{image_set}/{layer}/dendrogram_noise.pdf",  # every page
    params:
        distance=CLUSTERING["distance"],
        linkage=CLUSTERING["linkage"],
        max_leaves=CLUSTERING["max_leaves"],
    log:
        "logs/plot_noise_taxonomy/{model}/{image_set}/{layer}.log",
    benchmark:
        "logs/benchmarks/plot_noise_taxonomy/{model}/{image_set}/{layer}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/clustering.yaml"
    script:
        "../scripts/plot_noise_taxonomy.py"


rule grow_prediction_tree:
    input:
        manifest="results/manifests/{image_set}.parquet",
        h5=get_prediction_tree_activations,
        concept_table=get_first_concept_table,
    output:
        json="results/clustering/{model}/{image_set}/trees/class{cls}.json",
        png=report(
            "results/clustering/{model}/{image_set}/trees/class{cls}.png",
            caption="../report/prediction_tree.rst",
            category="Clustering",
            subcategory="{model}: prediction trees",
            labels={"model": "{model}", "class": "{cls}", "figure": "prediction tree"},
        ),
        svg="results/clustering/{model}/{image_set}/trees/class{cls}.svg",
    params:
        image_set=get_image_set_config,
        class_file=get_class_file,
        layer=get_prediction_tree_layer,
        top_images=CLUSTERING["prediction_trees"]["top_images"],
    log:
        "logs/grow_prediction_tree/{model}/{image_set}/class{cls}.log",
    benchmark:
        "logs/benchmarks/grow_prediction_tree/{model}/{image_set}/class{cls}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/clustering.yaml"
    script:
        "../scripts/grow_prediction_tree.py"
