"""Stages of ``rules/figures.smk``: figures (PDF + PNG; architecture diagrams also SVG)
from the tidy tables, and the CSV tables of the HTML report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


def plot_two_vs_two(*, tables: Sequence[str], pdf: str, png: str, model: str) -> None:
    """2 vs. 2 through the layers of one model, one line per DS model and image set."""
    from wordlens.figures import plot_two_vs_two as plot, read_tables

    t = read_tables(tables)
    plot(t, [pdf, png], title=f"{model}: 2 vs. 2 through the layers ({int(t['n_concepts'].max())} concepts, "
                             f"{int(t['n_permutations'].max())} permutations)")


def plot_architecture(*, table: str, svg: str, pdf: str, png: str, model_cfg: Mapping[str, Any], model: str,
                      image_set: str, ds: str) -> None:
    """The model's architecture graph, analysed layers coloured by their 2 vs. 2 accuracy."""
    from wordlens.diagrams import architecture_figure

    architecture_figure(pd.read_parquet(table), [svg, pdf, png], model_cfg,
                        title=f"{model}: 2 vs. 2 accuracy per analysed layer ({ds}, {image_set})")


def plot_concepts(*, per_concept: str, concept_table: str, pdf: str, png: str, model: str, image_set: str, ds: str,
                  layer: str) -> None:
    """The best and worst represented concepts at one layer."""
    from wordlens.figures import concept_names, plot_concepts as plot

    plot(pd.read_parquet(per_concept), [pdf, png], names=concept_names(concept_table),
         title=f"{model}, layer {layer} ({ds}, {image_set})")


def plot_misclassified(*, tables: Sequence[str], pdf: str, png: str, model: str) -> None:
    """1 vs. 2 of the misclassified images through the layers, per DS model."""
    from wordlens.figures import plot_one_vs_two_tables

    plot_one_vs_two_tables(tables, [pdf, png], by="ds_model",
                           title=f"{model}: misclassified images, 1 vs. 2 (true vs. predicted class)")


def plot_mistake_cosines(*, table: str, pdf: str, png: str) -> None:
    """Word-space cosine of each network's mistakes (true vs. predicted class)."""
    from wordlens.figures import plot_mistake_cosines as plot

    plot(pd.read_parquet(table), [pdf, png])


def plot_adversarial(*, table: str, pdf: str, png: str, model: str, image_set: str, ds: str) -> None:
    """1 vs. 2 of the adversarial images through the layers, per similarity category."""
    from wordlens.figures import plot_one_vs_two_tables

    plot_one_vs_two_tables([table], [pdf, png], by="group",
                           title=f"{model}: targeted adversarial images, 1 vs. 2 per similarity of the target "
                                 f"({ds}, {image_set})")


def plot_training(*, table: str, pdf: str, png: str) -> None:
    """Error and 2 vs. 2 over the training epochs."""
    from wordlens.figures import plot_training as plot

    plot(pd.read_parquet(table), [pdf, png])


def write_report_tables(*, inputs: Mapping[str, str], outputs: Mapping[str, str]) -> None:
    """Compact CSV versions of the main tables for the HTML report (``outputs[name]`` from
    ``inputs[name]``; names: concepts, two_vs_two, misclassified, adversarial, attacks)."""
    from wordlens.figures import summary_tables
    from wordlens.io import atomic_path

    for name, frame in summary_tables({name: pd.read_parquet(p) for name, p in inputs.items()}).items():
        with atomic_path(outputs[name], suffix=".csv") as tmp:
            frame.to_csv(tmp, index=False)
