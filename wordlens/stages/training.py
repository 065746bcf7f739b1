"""Stages of ``rules/training.smk``: training runs (checkpoints every N epochs) and the
table of 2 vs. 2 per checkpoint joined with the training log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from wordlens import io as wio


def train_model(*, run: str, run_cfg: Mapping[str, Any], train_set: Sequence[Any], test_set: Sequence[Any],
                checkpoint_dir: str, log: str, device: str = "auto") -> None:
    """Train one run (:func:`wordlens.training.train`); the rule of run ``r`` is ``train_model_r``.

    ``train_set`` and ``test_set`` are ``[name, image set config]``.
    """
    from wordlens.images import ImageSource
    from wordlens.models import ModelSpec
    from wordlens.training import TrainConfig, train

    cfg = {k: v for k, v in run_cfg.items() if k not in ("model", "train_set", "test_set", "image_sets")}
    train(ModelSpec.from_config(run, dict(run_cfg["model"])), ImageSource.from_config(*train_set),
          ImageSource.from_config(*test_set), TrainConfig.from_config(cfg), checkpoint_dir, log, device=device)


def gather_training(*, run: str, log: str, epochs: Sequence[int], tables: Sequence[str], table: str,
                    permuted: bool) -> None:
    """One table per training run: the per-epoch log joined with 2 vs. 2 per checkpoint
    (``tables[i]`` belongs to epoch ``epochs[i]``)."""
    from wordlens.tables import training_table

    wio.write_parquet(training_table(run, pd.read_parquet(log), epochs, [pd.read_parquet(p) for p in tables],
                                     permuted), table)


def concat_training(*, tables: Sequence[str], table: str) -> None:
    """The tables of every training run as one."""
    from wordlens.tables import concat_tables

    wio.write_parquet(concat_tables([pd.read_parquet(p) for p in tables]), table)
