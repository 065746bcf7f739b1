"""Stages of ``rules/visualize.smk``: what layers and units respond to, fooling, the mistakes
and attacks explained with Grad-CAM, out-of-sample predictions, and activation
maximization through training.

The methods are :mod:`wordlens.attribution` and :mod:`wordlens.actmax`, their choices
:mod:`wordlens.visualization`, the figures :mod:`wordlens.gallery`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from wordlens import io as wio

log = logging.getLogger(__name__)


def _model(model_name: str, model: Mapping[str, Any], device: str):
    import torch

    from wordlens.models import model_from_config

    torch.manual_seed(0)
    return model_from_config(model_name, dict(model), device)


def _pixels(rows: pd.DataFrame, source: Any, pre: Any):
    """The images of manifest rows in the model's pixel space (N × C × H × W, [0, 1])."""
    from wordlens.images import manifest_pixels

    return manifest_pixels(rows, source, pre)


def _data_stats(manifest: pd.DataFrame, source: Any, pre: Any) -> tuple[list[float], list[float]]:
    from wordlens.visualization import data_stats

    return data_stats(manifest, source, pre)


def _actmax_config(actmax: Sequence[Sequence[Any]], seed: int):
    from wordlens.actmax import ActMaxConfig

    return ActMaxConfig.from_config({"seed": int(seed), **dict(actmax)})


def _names(concept_table: str | None) -> dict[str, str]:
    from wordlens.figures import concept_names

    return concept_names(concept_table)


def _setup(manifest: str, image_set_name: str, image_set: Mapping[str, Any], class_file: str | None):
    from wordlens.concepts import class_ids
    from wordlens.images import ImageSource, read_manifest

    source = ImageSource.from_config(image_set_name, image_set)
    return source, read_manifest(manifest), class_ids(source, class_file)


def visualize_layer(*, manifest: str, h5: str, model_name: str, model: Mapping[str, Any], image_set_name: str,
                    image_set: Mapping[str, Any], class_file: str | None, layer: str, shape: Sequence[int],
                    classes: Sequence[int], channels: int | Sequence[int], images: int, examples: int,
                    actmax: Sequence[Sequence[Any]], seed: int, feature_maps: str, projections: str,
                    channels_png: str, table: str, device: str = "auto") -> None:
    """Feature maps, projections to pixels (DeconvNet, guided backpropagation) with Grad-CAM,
    and dataset examples with activation maximization of the layer's chosen channels."""
    import torch

    from wordlens import actmax as am, attribution, gallery, visualization
    from wordlens.activations import open_activations

    net, pre, dev = _model(model_name, model, device)
    source, man, ids = _setup(manifest, image_set_name, image_set, class_file)
    with open_activations(h5) as f:
        means = visualization.channel_means(f["activations"], shape)
    chosen = visualization.pick_channels(means, channels)
    reps = visualization.representative_rows(man, classes, ids, n=images)
    pixels = _pixels(reps, source, pre)
    x = pre.normalize(pixels).to(dev)
    labels = [ids[i] for i in reps["class_index"]]

    acts = attribution.feature_maps(net, x[:1], layer)[0].cpu()
    shown = chosen if not isinstance(channels, int) else attribution.top_channels(acts, len(chosen))
    gallery.feature_map_grid(pixels[0].numpy(), acts[shown].numpy(), shown, [feature_maps],
                             title=f"{model_name}, {layer}: the {len(shown)} most active channels of one "
                                   f"{labels[0]} image" if isinstance(channels, int) else
                             f"{model_name}, {layer}: channels {shown} of one {labels[0]} image")

    with torch.no_grad():
        predicted = net(x).argmax(dim=1).cpu().numpy()
    maps = {}
    for c in chosen[:2]:
        maps[f"DeconvNet, ch {c}"] = attribution.deconvnet(net, x, layer, c).detach().cpu().numpy()
        maps[f"guided backprop, ch {c}"] = attribution.guided_backprop(net, x, layer, c).detach().cpu().numpy()
    cam_name = "Grad-CAM of the predicted class"
    maps[cam_name] = attribution.grad_cam(net, x, layer, [int(p) for p in predicted]).detach().cpu().numpy()
    gallery.attribution_panel(pixels.numpy(), maps, [f"{c} → predicted {ids[p]}" for c, p in zip(labels, predicted)],
                              [projections], title=f"{model_name}, {layer}: projections to pixels", overlay=[cam_name])

    cfg = _actmax_config(actmax, seed)
    mean, std = _data_stats(man, source, pre)
    objectives = [[am.Term("channel", index=int(c), layer=layer)] for c in chosen]
    start = am.noise_start(len(chosen), pre.input_shape, mean, std, seed)
    result = am.activation_maximization(net, pre.normalize, objectives, start, cfg, device=dev)
    rows, panels = [], []
    order = man.sort_values("row").reset_index(drop=True)
    for j, c in enumerate(chosen):
        scores = means[:, c]
        top = visualization.top_examples(scores, examples)
        top_pixels = _pixels(order.iloc[top], source, pre).numpy()
        panels.append({"channel": c, "top_images": top_pixels, "top_scores": scores[top],
                       "am_image": result.images[j].numpy(), "all_scores": scores,
                       "top_labels": [str(order.at[i, "concept"]) for i in top]})
        rank = visualization.score_ranks(scores)
        rows.append(pd.DataFrame({"model": model_name, "image_set": image_set_name, "layer": layer,
                                  "channel": int(c), "image_id": order["image_id"], "concept": order["concept"],
                                  "row": order["row"], "score": scores, "rank": rank}))
    gallery.channel_examples_grid(panels, [channels_png],
                                  title=f"{model_name}, {layer}: dataset examples (mean channel activation) and "
                                        "activation maximization")
    wio.write_parquet(pd.concat(rows, ignore_index=True), table)


def maximize_class(*, manifest: str, model_name: str, model: Mapping[str, Any], image_set_name: str,
                   image_set: Mapping[str, Any], class_file: str | None, cls: int, starts: int,
                   actmax: Sequence[Sequence[Any]], seed: int, images: str, device: str = "auto") -> None:
    """Activation maximization of one class (:func:`wordlens.visualization.class_objectives`)."""
    import torch

    from wordlens import actmax as am, visualization

    net, pre, dev = _model(model_name, model, device)
    source, man, ids = _setup(manifest, image_set_name, image_set, class_file)
    if not 0 <= int(cls) < len(ids):
        raise ValueError(f"class index {cls} is outside 0 … {len(ids) - 1} of image set {image_set_name!r}")
    labels, objectives, kinds = visualization.class_objectives(int(cls), int(starts))
    mean, std = _data_stats(man, source, pre)
    noise = am.noise_start(int(starts), pre.input_shape, mean, std, int(seed) * 100003 + int(cls))
    real = _pixels(visualization.representative_rows(man, [int(cls)], ids), source, pre)
    if len(real) == 0:
        real = noise[:1].clone()
        labels[int(starts)] = "logit, noise 1 (no image of the class sampled)"
    start = torch.stack([real[0] if k == "image" else noise[int(k.split()[1])] for k in kinds])
    result = am.activation_maximization(net, pre.normalize, objectives, start, _actmax_config(actmax, seed), device=dev)
    with torch.no_grad():
        probs = torch.softmax(net(pre.normalize(result.images.to(dev))), dim=1).cpu()
    with wio.atomic_path(images, suffix=".npz") as tmp:
        np.savez(tmp, images=result.images.numpy(), starts=start.numpy(), labels=np.array(labels, dtype=str),
                 objective_start=np.asarray(result.initial), objective_end=np.asarray(result.final),
                 class_probability=probs[:, int(cls)].numpy(), predicted=probs.argmax(dim=1).numpy(),
                 class_index=int(cls), class_id=ids[int(cls)])


def plot_maximized_classes(*, images: Sequence[str], concept_table: str, png: str, table: str, model: str,
                           image_set: str) -> None:
    """The classes' activation-maximization images as one grid (classes × runs) and a table."""
    from wordlens import gallery

    names = _names(concept_table)
    parts = [dict(np.load(p)) for p in images]
    grid = np.stack([p["images"] for p in parts])
    rows = [names.get(str(p["class_id"]), str(p["class_id"])) for p in parts]
    cols = [str(x) for x in parts[0]["labels"]]
    scores = np.stack([p["class_probability"] for p in parts])
    gallery.image_grid(grid, rows, cols, [png], title=f"{model}: activation maximization of each class ({image_set})",
                       scores=scores, score_label="p(class)")
    frame = pd.concat([pd.DataFrame({"model": model, "image_set": image_set, "class_index": int(p["class_index"]),
                                     "class_id": str(p["class_id"]), "run": [str(x) for x in p["labels"]],
                                     "objective_start": p["objective_start"], "objective_end": p["objective_end"],
                                     "class_probability": p["class_probability"], "predicted": p["predicted"]})
                       for p in parts], ignore_index=True)
    wio.write_parquet(frame, table)


def fool_images(*, manifest: str, model_name: str, model: Mapping[str, Any], image_set_name: str,
                image_set: Mapping[str, Any], class_file: str | None, classes: Sequence[int], gradcam_layer: str,
                learning_rates: Sequence[float], steps: int, concept_table: str, table: str, panel: str, curve: str,
                device: str = "auto") -> None:
    """Dai's fooling experiment: ascend another class's logit from a real image; the step at
    which top-1 flips is the image's robustness (table), with the difference map and
    Grad-CAM of both classes before and after (panel)."""
    from wordlens import actmax as am, attribution, gallery, visualization

    net, pre, dev = _model(model_name, model, device)
    source, man, ids = _setup(manifest, image_set_name, image_set, class_file)
    names = _names(concept_table)
    reps = visualization.representative_rows(man, classes, ids).set_index("class_index")
    frames, shown = [], {"source": [], "fooled": [], "diff": [], "labels": [], "pairs": []}
    for src, tgt in visualization.fooling_pairs([c for c in classes if c in reps.index]):
        pixels = _pixels(reps.loc[[src]].reset_index(), source, pre)
        result = am.fool(net, pre.normalize, pixels, src, tgt, learning_rates, steps, device=dev)
        frame = result.to_frame()
        frame = frame.rename(columns={"source_class": "source_index", "target_class": "target_index"})
        frame.insert(0, "target_class", ids[tgt])
        frame.insert(0, "source_class", ids[src])
        frame.insert(0, "image_id", reps.at[src, "image_id"])
        frames.append(frame)
        k = visualization.fooling_shown(learning_rates, result.flip_step[0])
        shown["source"].append(pixels[0].numpy())
        shown["fooled"].append(result.images[0, k].numpy())
        shown["diff"].append(result.diff[0, k].numpy())
        shown["pairs"].append((src, tgt))
        step = int(frame.iloc[k]["flip_step"])
        shown["labels"].append(f"{names.get(ids[src], ids[src])} → {names.get(ids[tgt], ids[tgt])}, "
                               f"lr {learning_rates[k]:g}: " + (f"flips at step {step}" if step >= 0 else "no flip"))
    table_frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    table_frame.insert(0, "image_set", image_set_name)
    table_frame.insert(0, "model", model_name)
    wio.write_parquet(table_frame, table)
    if not frames:
        gallery.message_figure([panel, curve], f"{model_name}: fooling needs at least two classes with images")
        return
    src_px, fooled = np.stack(shown["source"]), np.stack(shown["fooled"])
    xs, xf = pre.normalize(_tensor(src_px)).to(dev), pre.normalize(_tensor(fooled)).to(dev)
    sources, targets = [int(s) for s, _ in shown["pairs"]], [int(t) for _, t in shown["pairs"]]
    maps = {"fooled image": fooled, "difference": np.stack(shown["diff"])}
    for when, x in (("before", xs), ("after", xf)):
        maps[f"Grad-CAM source, {when}"] = attribution.grad_cam(net, x, gradcam_layer, sources).detach().cpu().numpy()
        maps[f"Grad-CAM target, {when}"] = attribution.grad_cam(net, x, gradcam_layer, targets).detach().cpu().numpy()
    overlay = [k for k in maps if k.startswith("Grad-CAM")]
    gallery.attribution_panel(src_px, maps, shown["labels"], [panel], overlay=overlay,
                              title=f"{model_name}: fooling (ascending another class's logit), Grad-CAM at "
                                    f"{gradcam_layer}")
    gallery.fooling_curve(table_frame, [curve], title=f"{model_name}: steps until the top-1 class flips")


def _tensor(array: np.ndarray):
    import torch

    return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32)


def explain_mistakes(*, manifest: str, predictions: str, model_name: str, model: Mapping[str, Any],
                     image_set_name: str, image_set: Mapping[str, Any], class_file: str | None, gradcam_layer: str,
                     n: int, concept_table: str, png: str, device: str = "auto") -> None:
    """Grad-CAM of the true and of the predicted class for the first ``n`` misclassified images."""
    from wordlens import attribution, gallery

    net, pre, dev = _model(model_name, model, device)
    source, man, ids = _setup(manifest, image_set_name, image_set, class_file)
    names = _names(concept_table)
    pred = pd.read_parquet(predictions)
    wrong = pred[~pred["correct"].fillna(True).astype(bool)].sort_values("row").head(int(n))
    if wrong.empty:
        gallery.message_figure([png], f"{model_name}: no misclassified image in {image_set_name}")
        return
    rows = man.set_index("row", drop=False).loc[wrong["row"]]
    pixels = _pixels(rows, source, pre)
    x = pre.normalize(pixels).to(dev)
    true = [int(i) for i in rows["class_index"]]
    guess = [int(i) for i in wrong["pred_index"]]
    maps = {"Grad-CAM: true class": attribution.grad_cam(net, x, gradcam_layer, true).detach().cpu().numpy(),
            "Grad-CAM: predicted class": attribution.grad_cam(net, x, gradcam_layer, guess).detach().cpu().numpy()}
    labels = [f"{names.get(ids[t], ids[t])} → {names.get(ids[g], ids[g])} (p = {p:.2f})"
              for t, g, p in zip(true, guess, wrong["pred_prob"])]
    gallery.attribution_panel(pixels.numpy(), maps, labels, [png], overlay=list(maps),
                              title=f"{model_name}: misclassified images, Grad-CAM at {gradcam_layer}")


def explain_attacks(*, manifest: str, images: str, attacks: str, model_name: str, model: Mapping[str, Any],
                    image_set_name: str, image_set: Mapping[str, Any], gradcam_layer: str, n: int, concept_table: str,
                    png: str, device: str = "auto") -> None:
    """Grad-CAM of the source and of the target class, before and after the attack, for the
    first ``n`` successful targeted attacks."""
    import torch

    from wordlens import attribution, gallery
    from wordlens.images import ImageSource, read_manifest

    net, pre, dev = _model(model_name, model, device)
    source = ImageSource.from_config(image_set_name, image_set)
    names = _names(concept_table)
    table = pd.read_parquet(attacks)
    adv_all = torch.load(images, map_location="cpu", weights_only=True)["images"]
    ok = np.flatnonzero(table["success"].to_numpy(dtype=bool))[: int(n)]
    if len(ok) == 0:
        gallery.message_figure([png], f"{model_name}: no successful attack on {image_set_name}")
        return
    chosen = table.iloc[ok]
    man = read_manifest(manifest).set_index("row", drop=False)
    clean = _pixels(man.loc[chosen["source_row"]], source, pre)
    adv = adv_all[torch.as_tensor(ok)]
    xc, xa = pre.normalize(clean).to(dev), pre.normalize(adv).to(dev)
    src, tgt = [int(i) for i in chosen["source_class_index"]], [int(i) for i in chosen["target_index"]]
    maps = {"adversarial image": adv.numpy()}
    for when, x in (("before", xc), ("after", xa)):
        maps[f"Grad-CAM source, {when}"] = attribution.grad_cam(net, x, gradcam_layer, src).detach().cpu().numpy()
        maps[f"Grad-CAM target, {when}"] = attribution.grad_cam(net, x, gradcam_layer, tgt).detach().cpu().numpy()
    labels = [f"{names.get(a.source, a.source)} → {names.get(a.target, a.target)} ({a.category})"
              for a in chosen.itertuples()]
    gallery.attribution_panel(clean.numpy(), maps, labels, [png], overlay=[k for k in maps if k.startswith("Grad")],
                              title=f"{model_name}: targeted attacks, Grad-CAM at {gradcam_layer}")


def predict_noise(*, predictions: Sequence[str], sources: Sequence[str], manifest: str, model_name: str,
                  model: Mapping[str, Any], image_set_name: str, image_set: Mapping[str, Any],
                  class_file: str | None, n: int, seed: int, table: str, png: str, device: str = "auto") -> None:
    """Dai's out-of-sample test: which classes a model predicts for each image set and for
    ``n`` random-noise images (the data set's channel mean and std), beside its final bias."""
    import torch

    from wordlens import gallery, visualization

    net, pre, dev = _model(model_name, model, device)
    source, man, ids = _setup(manifest, image_set_name, image_set, class_file)
    predicted = {s: pd.read_parquet(p)["pred_index"].to_numpy() for s, p in zip(sources, predictions)}
    mean, std = _data_stats(man, source, pre)
    noise = _tensor(visualization.noise_images(n, pre.input_shape, mean, std, seed))
    with torch.no_grad():
        predicted["noise"] = torch.cat([net(pre.normalize(b).to(dev)).argmax(dim=1).cpu()
                                        for b in noise.split(64)]).numpy()
    freq = visualization.prediction_frequencies(predicted, ids)
    bias = visualization.output_bias(net)
    freq["bias"] = np.nan if bias is None else bias[freq["class_index"].to_numpy()]
    freq.insert(0, "model", model_name)
    wio.write_parquet(freq, table)
    wide = freq.pivot(index="source", columns="class_id", values="fraction")[ids].reindex([*sources, "noise"])
    gallery.prediction_heatmap(wide, bias, ids, [png],
                               title=f"{model_name}: predicted classes per image set and for {n} noise images")


def maximize_checkpoints(*, checkpoints: Sequence[str], manifest: str, models: Sequence[Sequence[Any]],
                         epochs: Sequence[int], image_set_name: str, image_set: Mapping[str, Any], cls: int,
                         actmax: Sequence[Sequence[Any]], seed: int, images: str, device: str = "auto") -> None:
    """Activation maximization of one class's logit at every checkpoint of a training run,
    from the same noise start; the class's real images are kept for the similarity score."""
    from wordlens import actmax as am, visualization

    out, initial, final, start, pre = [], [], [], None, None
    for (model_name, model_cfg), epoch in zip(models, epochs):
        net, pre, dev = _model(str(model_name), model_cfg, device)
        if start is None:
            source, man, ids = _setup(manifest, image_set_name, image_set, None)
            mean, std = _data_stats(man, source, pre)
            start = am.noise_start(1, pre.input_shape, mean, std, int(seed) * 100003 + int(cls))
            real = man[man["concept"] == ids[int(cls)]].sort_values("row")
            references = _pixels(real, source, pre).numpy()
        result = am.activation_maximization(net, pre.normalize, [[am.Term("logit", index=int(cls))]], start,
                                            _actmax_config(actmax, seed), device=dev)
        out.append(result.images[0].numpy())
        initial.append(float(np.asarray(result.initial)[0]))
        final.append(float(np.asarray(result.final)[0]))
        log.info("epoch %d: class %s logit %.3f → %.3f", epoch, cls, initial[-1], final[-1])
    with wio.atomic_path(images, suffix=".npz") as tmp:
        np.savez(tmp, images=np.stack(out), epochs=np.asarray(epochs), objective_start=np.asarray(initial),
                 objective_end=np.asarray(final), references=references, class_index=int(cls),
                 class_id=ids[int(cls)])


def plot_training_classes(*, images: Sequence[str], manifest: str, concept_table: str, image_set_name: str,
                          image_set: Mapping[str, Any], seed: int, png: str, table: str, run: str) -> None:
    """The classes' activation-maximization images at every checkpoint (classes × epochs),
    each scored by its similarity to the class's real images
    (:func:`wordlens.descriptors.class_similarity`)."""
    from wordlens import gallery
    from wordlens.descriptors import class_similarity

    names = _names(concept_table)
    parts = [dict(np.load(p)) for p in images]
    epochs = [int(e) for e in parts[0]["epochs"]]
    scores = np.stack([class_similarity(p["images"], p["references"], seed=seed) for p in parts])
    gallery.image_grid(np.stack([p["images"] for p in parts]),
                       [names.get(str(p["class_id"]), str(p["class_id"])) for p in parts],
                       [f"epoch {e}" for e in epochs], [png], scores=scores, score_label="similarity",
                       title=f"run {run}: activation maximization of each class through training "
                             "(score: SIFT bag-of-words similarity to the class's real images)")
    frame = pd.concat([pd.DataFrame({"run": run, "class_index": int(p["class_index"]), "class_id": str(p["class_id"]),
                                     "epoch": epochs, "objective_start": p["objective_start"],
                                     "objective_end": p["objective_end"], "similarity": s})
                       for p, s in zip(parts, scores)], ignore_index=True)
    wio.write_parquet(frame, table)


def _concat(tables: Sequence[str], table: str) -> None:
    from wordlens.tables import concat_tables

    wio.write_parquet(concat_tables([pd.read_parquet(p) for p in tables]), table)


def concat_fooling(*, tables: Sequence[str], table: str) -> None:
    """The fooling tables of every visualised model as one."""
    _concat(tables, table)


def concat_out_of_sample(*, tables: Sequence[str], table: str) -> None:
    """The out-of-sample prediction tables of every visualised model as one."""
    _concat(tables, table)


def concat_actmax(*, tables: Sequence[str], table: str) -> None:
    """The class activation-maximization tables of every visualised model as one."""
    _concat(tables, table)


def concat_actmax_training(*, tables: Sequence[str], table: str) -> None:
    """The through-training activation-maximization tables of every run as one."""
    _concat(tables, table)
