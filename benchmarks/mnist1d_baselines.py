"""MNIST-1D baselines: the paper's table (Greydanus 2020, "Scaling down deep learning").

Logistic regression, the paper's MLP, its 1-D CNN (the library's `Mnist1dCNN` plus a
linear head) and its bidirectional GRU, each trained by a plain LightningModule with the
paper's settings: Adam at lr 1e-2, batch 100, 6,000 steps, cross-entropy, on the paper's
4,000 training signals (no validation split), tested on its 1,000 test signals. Three
seeds (initialisation and shuffle; the dataset is the paper's, generator seed 42).
The paper reports 32 %, 68 %, 94 % and 91 %.

One intra-op thread per process: on a loaded 2-core machine the default made each step
10-30x slower.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from lightning.pytorch import LightningModule, seed_everything
from torch import nn
from typing_extensions import override

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import publish, quiet_trainer

from lightning_recipes.data import Mnist1dDataModule
from lightning_recipes.modules import Mnist1dCNN

SEEDS = (0, 1, 2)
STEPS = 6000
PAPER = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}


class PaperMLP(nn.Module):
    """The paper's MLP: two hidden layers of 100 with a residual connection on the second."""

    def __init__(self, hidden: int = 100) -> None:
        super().__init__()
        self.linear1 = nn.Linear(40, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, 10)

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear1(x).relu()
        h = h + self.linear2(h).relu()
        return self.linear3(h)  # type: ignore[no-any-return]


class PaperGRU(nn.Module):
    """The paper's GRU: bidirectional, 6 hidden units, every time step into a linear head."""

    def __init__(self, hidden: int = 6, length: int = 40) -> None:
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(2 * hidden * length, 10)

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, _ = self.gru(x.unsqueeze(-1))
        return self.linear(output.flatten(1))  # type: ignore[no-any-return]


def build(name: str) -> nn.Module:
    if name == "logistic":
        return nn.Linear(40, 10)
    if name == "mlp":
        return PaperMLP()
    if name == "cnn":
        return nn.Sequential(Mnist1dCNN(), nn.Linear(125, 10))
    return PaperGRU()


class Plain(LightningModule):
    """Cross-entropy and Adam at a fixed learning rate: nothing else."""

    def __init__(self, net: nn.Module, lr: float = 1e-2) -> None:
        super().__init__()
        self.net = net
        self.lr = lr

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    @override
    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    @override
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def run(name: str, seed: int, steps: int) -> dict[str, float]:
    seed_everything(seed, verbose=False)
    data = Mnist1dDataModule(batch_size=100, val_fraction=0.0, seed=seed)
    model = Plain(build(name))
    trainer = quiet_trainer(max_steps=steps, max_epochs=-1)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    assert data.test_dataset is not None
    model.eval()
    with torch.no_grad():
        predicted = model(data.test_dataset.features).argmax(-1)
    return {
        "acc": float((predicted == data.test_dataset.targets).float().mean()),
        "seconds": seconds,
        "params": float(sum(p.numel() for p in model.parameters())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--seeds", type=int, default=len(SEEDS))
    parser.add_argument("--models", nargs="+", default=list(PAPER), choices=list(PAPER))
    args = parser.parse_args()
    torch.set_num_threads(1)  # 2 shared, busy cores: the default made each step 10-30x slower
    seeds = tuple(range(args.seeds))
    rows = []
    for name in args.models:
        results = [run(name, seed, args.steps) for seed in seeds]
        accs = [r["acc"] for r in results]
        print(name, [round(a, 4) for a in accs], flush=True)
        rows.append(
            [
                name,
                int(results[0]["params"]),
                PAPER[name],
                f"{statistics.mean(accs):.3f} ± {statistics.stdev(accs):.3f}",
                min(accs),
                statistics.mean(r["seconds"] for r in results),
            ]
        )
    publish(
        "mnist1d_baselines",
        "MNIST-1D baselines: the paper's table, reproduced",
        ["model", "params", "paper test acc", "test acc (mean ± std)", "min", "fit s (mean)"],
        rows,
        f"MNIST-1D as generated by `mnist1d.data.make_dataset` with the paper's settings "
        f"(`Mnist1dDataModule(val_fraction=0.0)`: 4,000 training / 1,000 test signals of "
        f"length 40), a plain LightningModule (cross-entropy, Adam lr 1e-2, batch 100, "
        f"{args.steps} steps, no schedule, no regularisation), seeds {seeds} (each changes "
        "the initialisation and the shuffle; the dataset stays the paper's). Models as in the "
        "paper's code: logistic regression (a Linear layer), MLP 40-100-100-10 with a "
        "residual second layer, the CNN (`Mnist1dCNN`: three stride-2 Conv1d with 25 channels, "
        "plus a 125-10 head), a bidirectional GRU with 6 hidden units whose 40 outputs feed "
        "a linear head. Paper: Greydanus 2020, 'Scaling down deep learning', table 1. "
        "Standard deviation over seeds; one torch thread.",
    )


if __name__ == "__main__":
    main()
