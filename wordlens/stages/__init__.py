"""The workflow's stages: one module per ``rules/<stage>.smk``, one function per rule.

Rule ``x`` in ``rules/<stage>.smk`` runs ``scripts/x.py``, which calls
``wordlens.stages.<stage>.x(...)`` with keyword arguments named after the rule's
``input``, ``output``, ``params`` and ``wildcards``.  Stage functions only read their
inputs, call the library and write their outputs (atomically); every method choice lives
in the library module it belongs to.  They can equally be called from Python.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def setup(smk: Any) -> None:
    """Send a script's stderr (logging, progress bars, warnings) to its rule's log file.

    Snakemake sets OMP_NUM_THREADS (and friends) to the rule's threads for scripts, which
    torch reads when it is imported, so torch need not be imported here.
    """
    if smk.log:
        stream = open(smk.log[0], "w", buffering=1)  # noqa: SIM115 - lives as long as the script
        sys.stderr = stream
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def chunks_by_layer(paths: Sequence[str], layers: Sequence[str]) -> dict[str, list[str]]:
    """Null chunk files (``…/<layer>/null/chunk<k>.npz``) grouped by layer, in ``layers`` order.

    Raises
    ------
    ValueError
        If a file's layer is not one of ``layers`` or a layer has no chunk.
    """
    out: dict[str, list[str]] = {layer: [] for layer in layers}
    for p in paths:
        layer = Path(p).parent.parent.name
        if layer not in out or Path(p).parent.name != "null":
            raise ValueError(f"{p} is not a null chunk of one of the layers {list(layers)}")
        out[layer].append(str(p))
    empty = [layer for layer, files in out.items() if not files]
    if empty:
        raise ValueError(f"no null chunks for layer(s) {empty}")
    return out
