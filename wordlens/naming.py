"""Names and schedules shared by the package and the workflow (no heavy imports, so the
Snakefile can use them at parse time)."""

from __future__ import annotations

import re

CHECKPOINT_ID = re.compile(r"^(?P<run>.+)-epoch(?P<epoch>\d{4})$")


def checkpoint_epochs(epochs: int, every: int) -> list[int]:
    """The epochs a training run writes checkpoints for: 0, every, 2·every, …, and the last."""
    return sorted({0, *range(every, epochs + 1, every), epochs})


def checkpoint_name(epoch: int) -> str:
    """File name of the checkpoint of ``epoch``."""
    return f"epoch-{epoch:04d}.pt"


def checkpoint_model_id(run: str, epoch: int) -> str:
    """The model id under which a training checkpoint is analysed (a path component)."""
    return f"{run}-epoch{epoch:04d}"


def parse_checkpoint_model_id(model_id: str) -> tuple[str, int] | None:
    """(run, epoch) of a checkpoint model id, or None."""
    m = CHECKPOINT_ID.match(model_id)
    return (m.group("run"), int(m.group("epoch"))) if m else None
