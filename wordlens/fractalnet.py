"""FractalNet (Larsson, Maire & Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks
without Residuals", ICLR 2017), as trained in "Words as a window" on CIFAR-100.

A block with C columns is the fractal expansion f_1(z) = conv(z),
f_{C+1}(z) = join(f_C(f_C(z)), conv(z)).  It is built here as a grid: column c
(c = 0 shallowest … C − 1 deepest) has 2^c conv units, one every 2^(C−1−c) depth steps,
and at every depth step where more than one column ends a conv unit, those columns are
joined (element-wise mean of the surviving inputs) and continue from the joined tensor.
The joins at one depth are a single flat multi-input mean, as in the authors' Caffe
implementation.  A block ends with a 2 × 2 max-pool; B blocks are followed by global
average pooling and a fully connected layer.

Conv unit: conv 3 × 3 (with bias) → dropout (per-block rate) → batch norm → ReLU.

Drop-path (training only), decided once per mini-batch as in the Caffe implementation:
with probability ``global_ratio`` the batch uses *global* drop-path — one column, drawn
uniformly, for the whole network — otherwise *local* drop-path — every join drops each
input with probability ``local_drop``, always keeping at least one.  The random draws
come from the model's own seeded generator.  In eval mode every join is the plain mean
of all its inputs (``eval_column`` runs one column alone, e.g. the deepest).

Graph nodes (for layer selection) are named ``blocks.{b}.columns.{c}.{i}.{conv,drop,bn,relu}``,
``blocks.{b}.fractal_join[_k]``, ``blocks.{b}.pool``, ``avgpool``, ``flatten``, ``fc``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import fx, nn

from wordlens.layers import Node, register_preset
from wordlens.models import register_architecture

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


def fractal_join(inputs: list[torch.Tensor], keep: list[bool] | None = None) -> torch.Tensor:
    """Element-wise mean of the inputs whose ``keep`` flag is set (all by default)."""
    if keep is None:
        return torch.stack(inputs).mean(dim=0)
    kept = [x for x, k in zip(inputs, keep) if k]
    return torch.stack(kept).mean(dim=0)


fx.wrap("fractal_join")  # one graph node per join, named after it


class ConvUnit(nn.Module):
    """conv 3 × 3 → dropout → batch norm → ReLU."""

    def __init__(self, cin: int, cout: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=True)
        self.drop = nn.Dropout(dropout)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.drop(self.conv(x))))


class _DropPlan:
    """The drop-path decisions of one forward pass."""

    def __init__(self, n_columns: int, local_drop: float, global_ratio: float, generator: torch.Generator):
        self.local_drop = local_drop
        self.generator = generator
        self.global_column: int | None = None
        if global_ratio > 0 and float(torch.rand((), generator=generator)) < global_ratio:
            self.global_column = int(torch.randint(n_columns, (), generator=generator))

    def keep(self, n: int) -> list[bool]:
        """Local drop-path mask for a join of ``n`` inputs; never drops all of them."""
        mask = (torch.rand(n, generator=self.generator) >= self.local_drop).tolist()
        if not any(mask):
            mask[int(torch.randint(n, (), generator=self.generator))] = True
        return mask


class FractalBlock(nn.Module):
    """One fractal block of ``n_columns`` columns followed by 2 × 2 max-pooling."""

    def __init__(self, n_columns: int, cin: int, cout: int, dropout: float):
        super().__init__()
        if n_columns < 1:
            raise ValueError(f"a fractal block needs at least one column; got {n_columns}")
        self.n_columns = n_columns
        self.columns = nn.ModuleList(
            nn.ModuleList(ConvUnit(cin if i == 0 else cout, cout, dropout) for i in range(2**c))
            for c in range(n_columns)
        )
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor, plan: _DropPlan | None = None, column: int | None = None) -> torch.Tensor:
        C = self.n_columns
        if plan is not None and plan.global_column is not None:
            column = plan.global_column
        current = [x] * C  # the input of each column's next conv unit
        for t in range(1, 2 ** (C - 1) + 1):
            ending = [c for c in range(C) if t % 2 ** (C - 1 - c) == 0]
            if column is not None:
                ending = [c for c in ending if c == column]
                if not ending:
                    continue
            outs = [self.columns[c][t // 2 ** (C - 1 - c) - 1](current[c]) for c in ending]
            if len(outs) == 1:
                current[ending[0]] = outs[0]
                continue
            joined = fractal_join(outs, plan.keep(len(outs)) if plan is not None else None)
            for c in ending:
                current[c] = joined
        return self.pool(current[C - 1] if column is None else current[column])


@register_architecture("fractalnet", preprocessing={"resize": None, "crop": 32, "mean": CIFAR100_MEAN,
                                                    "std": CIFAR100_STD, "channels": 3})
class FractalNet(nn.Module):
    """FractalNet for small images.

    Parameters
    ----------
    num_classes
        Output classes (100 for CIFAR-100).
    n_blocks
        B, the number of blocks (each halves the resolution); 5 for 32 × 32 CIFAR.
    n_columns
        C, the columns per block (C = 3: 4 conv layers per block, 20 in all).
    channels
        Output channels of each block (default 64, 128, 256, 512, 512).
    dropout
        Dropout rate of each block's conv units (default 0, .1, .2, .3, .4).
    local_drop
        Local drop-path rate per join input (0.15).
    global_ratio
        Fraction of mini-batches trained with global drop-path (0.5).
    in_channels
        Image channels (3; 1 for Fashion-MNIST).
    seed
        Seed of the drop-path generator.
    """

    def __init__(
        self,
        num_classes: int = 100,
        n_blocks: int = 5,
        n_columns: int = 3,
        channels: Sequence[int] = (64, 128, 256, 512, 512),
        dropout: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4),
        local_drop: float = 0.15,
        global_ratio: float = 0.5,
        in_channels: int = 3,
        seed: int = 0,
    ):
        super().__init__()
        channels, dropout = list(channels), list(dropout)
        if len(channels) != n_blocks or len(dropout) != n_blocks:
            raise ValueError(
                f"FractalNet: channels ({len(channels)}) and dropout ({len(dropout)}) need one entry per block "
                f"(n_blocks = {n_blocks})"
            )
        if not 0 <= local_drop < 1 or not 0 <= global_ratio <= 1:
            raise ValueError(f"FractalNet: local_drop must be in [0, 1) and global_ratio in [0, 1]; "
                             f"got {local_drop}, {global_ratio}")
        self.n_columns = n_columns
        self.local_drop = float(local_drop)
        self.global_ratio = float(global_ratio)
        #: Run a single column in eval mode (None: the whole network).
        self.eval_column: int | None = None
        self.generator = torch.Generator().manual_seed(int(seed))
        cins = [in_channels] + channels[:-1]
        self.blocks = nn.ModuleList(FractalBlock(n_columns, ci, co, p) for ci, co, p in zip(cins, channels, dropout))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(channels[-1], num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plan = None
        tracing = isinstance(x, fx.Proxy)  # graph capture sees the deterministic network
        if self.training and not tracing and (self.local_drop > 0 or self.global_ratio > 0):
            plan = _DropPlan(self.n_columns, self.local_drop, self.global_ratio, self.generator)
        column = None if self.training else self.eval_column
        for block in self.blocks:
            x = block(x, plan, column)
        return self.fc(self.flatten(self.avgpool(x)))


def _first_relu(nodes: list[Node]) -> list[str]:
    return [n.name for n in nodes if n.kind == "relu"][:1]


def _block_ends(nodes: list[Node]) -> list[str]:
    return [n.name for n in nodes if n.name.startswith("blocks.") and n.name.endswith(".pool")]


def _paper(nodes: list[Node]) -> list[str]:
    """First conv layer, the end of each block and the last fully connected layer ("Words as a window", Fig. 3)."""
    chosen = set(_first_relu(nodes)) | set(_block_ends(nodes)) | {n.name for n in nodes if n.kind == "linear"}
    return [n.name for n in nodes if n.name in chosen]


register_preset("fractalnet", "paper", _paper)
register_preset("fractalnet", "blocks", _block_ends)
register_preset("fractalnet", "joins", lambda nodes: [n.name for n in nodes if n.kind == "fractal_join"])
