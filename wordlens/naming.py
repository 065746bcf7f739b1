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


def chunk_bounds(n_items: int, chunk_size: int) -> list[tuple[int, int]]:
    """Half-open ranges ``[k·chunk_size, min((k+1)·chunk_size, n_items))`` tiling ``[0, n_items)``.

    The workflow splits permutations (and attack sources) into fixed-size chunks, one job
    each: chunk k always covers the same items, so raising ``n_items`` only adds chunks
    (and changes the last one if it was partial).
    """
    n_items, chunk_size = int(n_items), int(chunk_size)
    if n_items < 0 or chunk_size < 1:
        raise ValueError(f"chunk_bounds needs n_items >= 0 and chunk_size >= 1; got {n_items}, {chunk_size}")
    return [(start, min(start + chunk_size, n_items)) for start in range(0, n_items, chunk_size)]


#: The four files of Fashion-MNIST (gzipped IDX), as torchvision lays them out under
#: ``<root>/FashionMNIST/raw/``.
FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
