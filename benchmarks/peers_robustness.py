"""fgsm, pgd and AdversarialTraining beside torchattacks on the MNIST-1D CNN.

Two parts, one process, one intra-op thread:

1. **The attacks.** A CNN (`Mnist1dCNN` + a 125-10 head) is trained per seed (Adam lr 1e-2,
   batch 100); then on the 1,000 test signals our `fgsm` and `pgd` (L-inf, no random
   start, ``clip=(0, 1)``) and torchattacks' ``FGSM`` and ``PGD(random_start=False)`` with
   the same radius, step and steps run on the same model: the largest absolute difference
   between the two adversarial batches, the robust accuracy each gives, and the time
   ratio (ours / torchattacks, calls interleaved).
2. **Adversarial training.** Per seed, three fits interleaved with their order rotated:
   standard training, ours (``AdversarialTraining(eps, attack="pgd", steps=7,
   clip=[0, 1])`` on the plain module) and a hand loop that calls torchattacks'
   ``PGD(eps, alpha=2.5 * eps / 7, steps=7, random_start=True)`` in ``training_step`` (the
   usual torchattacks recipe). Each is scored with our `robust_accuracy` (PGD-20, random
   start, seeded) at the training radius: clean and PGD accuracy, and the fit-time ratio.

torchattacks refuses inputs outside [0, 1] (and clamps its results there), so the
signals are min-max scaled to [0, 1] with the training split's range (the test split is
clipped to it), and the model's first layer maps them back (so it trains as on the raw
signals); the radius ``EPS`` is in [0, 1] units (``EPS * range`` in the signals' own).

Environment: torchattacks pulls torchvision, and PyPI's torchvision does not load beside
the CPU torch 2.13.0 of the library's venv (``operator torchvision::nms does not exist``,
which breaks ``import lightning``); torchattacks 3.5.1 also pins an old ``requests``. The
peers run in their own venv (``make peers-env``: ``benchmarks/.peers-venv``, torch 2.14.1
+ torchvision 0.29.1, this package editable, torchattacks installed with ``--no-deps``)::

    make peers-env
    nice -n 10 benchmarks/.peers-venv/bin/python benchmarks/peers_robustness.py
    nice -n 10 benchmarks/.peers-venv/bin/python benchmarks/peers_robustness.py --quick
"""

import argparse
import logging
import operator
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from lightning.pytorch import Callback, LightningModule, seed_everything
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from typing_extensions import override

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import publish, publish_peers, quiet_trainer
from _peers import append_findings, paired, peer_row, ratio_text

from lightning_recipes.data import generate_mnist1d
from lightning_recipes.modules import Mnist1dCNN
from lightning_recipes.robustness import AdversarialTraining, fgsm, pgd, robust_accuracy

try:
    import torchattacks
except ImportError as error:  # the library's venv: no torchattacks there, by design
    raise SystemExit(
        f"torchattacks is not importable ({error}). Run this benchmark in the peers' venv: "
        "`make peers-env`, then benchmarks/.peers-venv/bin/python benchmarks/peers_robustness.py"
    ) from error

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

EPS = 0.01
ATTACK_STEPS = 10
TRAIN_STEPS = 7
EVAL_STEPS = 20
METHODS = ("standard", "ours AdversarialTraining", "torchattacks loop")


LOW, HIGH = 0.0, 1.0  # the training split's range, set by scaled_data()


class Unscale(nn.Module):
    """The model's first layer: [0, 1] back to the signals' own units."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high

    @override
    def forward(self, x: Tensor) -> Tensor:
        return x * (self.high - self.low) + self.low


def scaled_data() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The paper's split, min-max scaled to [0, 1] with the training range."""
    global LOW, HIGH
    x, y, x_test, y_test = (torch.from_numpy(a.copy()) for a in generate_mnist1d())
    LOW, HIGH = float(x.min()), float(x.max())
    x = (x - LOW) / (HIGH - LOW)
    x_test = ((x_test - LOW) / (HIGH - LOW)).clamp(0.0, 1.0)
    return x, y, x_test, y_test


def cnn() -> nn.Module:
    """The paper's CNN behind `Unscale`: it learns as on the raw signals."""
    return nn.Sequential(Unscale(LOW, HIGH), Mnist1dCNN(), nn.Linear(125, 10))


class Plain(LightningModule):
    """Cross-entropy and Adam at a fixed learning rate."""

    def __init__(self) -> None:
        super().__init__()
        self.net = cnn()

    @override
    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    @override
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    @override
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-2)


class TorchattacksLoop(Plain):
    """The torchattacks recipe: attack each batch with PGD in ``training_step``."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.attack = torchattacks.PGD(
            self.net, eps=eps, alpha=2.5 * eps / TRAIN_STEPS, steps=TRAIN_STEPS, random_start=True
        )

    @override
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        return F.cross_entropy(self(self.attack(x, y)), y)


def fit(method: str, seed: int, epochs: int, data: tuple[Tensor, ...]) -> dict[str, Any]:
    x, y, x_test, y_test = data
    seed_everything(seed, verbose=False)
    model: Plain = TorchattacksLoop(EPS) if method == "torchattacks loop" else Plain()
    callbacks: list[Callback] = []
    if method == "ours AdversarialTraining":
        callbacks.append(
            AdversarialTraining(EPS, attack="pgd", steps=TRAIN_STEPS, clip=[0.0, 1.0], seed=seed)
        )
    loader = DataLoader(
        TensorDataset(x, y),
        batch_size=100,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    trainer = quiet_trainer(max_epochs=epochs, callbacks=callbacks)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, train_dataloaders=loader)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    net = model.net.eval()
    scores = robust_accuracy(
        net,
        x_test,
        y_test,
        [0.0, EPS],
        "pgd",
        steps=EVAL_STEPS,
        clip=(0.0, 1.0),
        generator=torch.Generator().manual_seed(1000 + seed),
    )
    return {"clean": scores[0.0], "pgd": scores[EPS], "seconds": seconds, "cpu": cpu, "net": net}


def timed(function: Callable[[], Tensor]) -> tuple[Tensor, float]:
    start = time.perf_counter()
    out = function()
    return out, time.perf_counter() - start


def compare_attacks(net: nn.Module, x: Tensor, y: Tensor, repeats: int) -> dict[str, Any]:
    """Ours vs torchattacks on one trained model: max |difference|, accuracies, time ratio."""
    step = 2.5 * EPS / ATTACK_STEPS
    pairs: dict[str, tuple[Callable[[], Tensor], Callable[[], Tensor]]] = {
        "FGSM": (
            lambda: fgsm(net, x, y, EPS, clip=(0.0, 1.0)),
            lambda: torchattacks.FGSM(net, eps=EPS)(x, y),
        ),
        f"PGD-{ATTACK_STEPS}": (
            lambda: pgd(
                net,
                x,
                y,
                EPS,
                steps=ATTACK_STEPS,
                step_size=step,
                clip=(0.0, 1.0),
                random_start=False,
            ),
            lambda: torchattacks.PGD(
                net, eps=EPS, alpha=step, steps=ATTACK_STEPS, random_start=False
            )(x, y),
        ),
    }
    out: dict[str, Any] = {}
    for name, (ours, theirs) in pairs.items():
        ratios = []
        for repeat in range(repeats):
            first, second = (ours, theirs) if repeat % 2 == 0 else (theirs, ours)
            a, time_a = timed(first)
            b, time_b = timed(second)
            if repeat % 2:
                a, b, time_a, time_b = b, a, time_b, time_a
            ratios.append(time_a / time_b)
        with torch.no_grad():
            acc_ours = float((net(a).argmax(-1) == y).float().mean())
            acc_theirs = float((net(b).argmax(-1) == y).float().mean())
        out[name] = {
            "diff": float((a - b).abs().max()),
            "ours": acc_ours,
            "theirs": acc_theirs,
            "ratio": statistics.median(ratios),
        }
    return out


def mean_std(values: list[float], digits: int = 3) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):+.{digits}f} ± {std:.{digits}f}".lstrip("+")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 2 epochs: a smoke run")
    parser.add_argument("--name", default="peers_robustness", help="results file name")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.seeds = 2, 2
    torch.set_num_threads(1)
    data = scaled_data()
    x_test, y_test = data[2], data[3]
    fit("standard", 0, 1, data)  # warm-up
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    attacks: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        shift = seed % len(METHODS)
        for method in METHODS[shift:] + METHODS[:shift]:
            result = fit(method, seed, args.epochs, data)
            results[method].append(result)
            print(
                f"seed {seed} {method:26s} clean {result['clean']:.3f} PGD {result['pgd']:.3f} "
                f"{result['seconds']:.1f}s",
                flush=True,
            )
        compared = compare_attacks(results["standard"][-1]["net"], x_test, y_test, repeats=6)
        attacks.append(compared)
        print(f"seed {seed} attacks {compared}", flush=True)

    rows: list[list[Any]] = []
    for name in attacks[0]:
        per = [a[name] for a in attacks]
        rows.append(
            [
                f"{name} (attack)",
                mean_std([p["ours"] for p in per]),
                mean_std([p["theirs"] for p in per]),
                f"max abs difference {max(p['diff'] for p in per):.1e}",
                f"{mean_std([p['ratio'] for p in per], 2)}x (attack call)",
                "—",
            ]
        )

    def paired(
        a: str, b: str, key: str, op: Callable[[float, float], float] = operator.sub
    ) -> list[float]:
        return [op(r[key], s[key]) for r, s in zip(results[a], results[b], strict=True)]

    ours, peer = "ours AdversarialTraining", "torchattacks loop"
    for key, label in (("clean", "clean acc"), ("pgd", f"PGD-{EVAL_STEPS} acc")):
        rows.append(
            [
                f"AdversarialTraining: {label}",
                mean_std([r[key] for r in results[ours]]),
                mean_std([r[key] for r in results[peer]]),
                f"paired {mean_std(paired(ours, peer, key))}",
                "—",
                mean_std([r[key] for r in results["standard"]]),
            ]
        )
    wall = paired(ours, peer, "seconds", operator.truediv)
    cpu = paired(ours, peer, "cpu", operator.truediv)
    rows.append(
        [
            "AdversarialTraining: fit time",
            f"{statistics.mean(r['seconds'] for r in results[ours]):.1f} s",
            f"{statistics.mean(r['seconds'] for r in results[peer]):.1f} s",
            "—",
            f"{mean_std(wall)}x wall, {mean_std(cpu)}x CPU",
            f"{statistics.mean(r['seconds'] for r in results['standard']):.1f} s",
        ]
    )
    publish(
        args.name,
        "fgsm, pgd, AdversarialTraining beside torchattacks (MNIST-1D CNN)",
        ["row", "ours", "torchattacks", "difference", "time ours / peer", "standard training"],
        rows,
        f"MNIST-1D (the paper's 4,000/1,000 split) min-max scaled to [0, 1] with the "
        f"training range, since torchattacks refuses other inputs; L-inf radius {EPS} in "
        f"those units. CNN (`Mnist1dCNN` + Linear 125-10), Adam lr 1e-2, batch 100, "
        f"{args.epochs} epochs, seeds {tuple(range(args.seeds))}. Attack rows: on each "
        f"seed's standard model, the 1,000 test signals, ours `fgsm(eps, clip=(0, 1))` / "
        f"`pgd(steps={ATTACK_STEPS}, step_size=2.5*eps/{ATTACK_STEPS}, random_start=False, "
        f"clip=(0, 1))` vs torchattacks `FGSM(eps)` / `PGD(alpha=2.5*eps/{ATTACK_STEPS}, "
        f"steps={ATTACK_STEPS}, random_start=False)` (torchattacks "
        f"{torchattacks.__version__}): robust accuracy mean ± std over seeds, the largest "
        "absolute difference of the adversarial examples over all seeds, and the time "
        "ratio of one attack call (median of 6 interleaved calls per seed, then mean ± std). "
        f"Training rows: ours `AdversarialTraining({EPS}, attack='pgd', steps={TRAIN_STEPS}, "
        f"clip=[0, 1])` vs a `training_step` that calls torchattacks `PGD(eps={EPS}, "
        f"alpha=2.5*eps/{TRAIN_STEPS}, steps={TRAIN_STEPS}, random_start=True)` (same step "
        f"size, steps and random start), and standard training; each scored with "
        f"`robust_accuracy` (PGD-{EVAL_STEPS}, random start, seeded) at eps {EPS}. Paired "
        "differences and time ratios per seed, then mean ± std; the three fits of a seed "
        "interleaved, order rotated.",
        command=(
            "make peers-env && nice -n 10 benchmarks/.peers-venv/bin/python "
            f"benchmarks/peers_robustness.py --epochs {args.epochs} --seeds {args.seeds}"
        ),
    )
    publish_summary(args.name, results, attacks, args.epochs, args.seeds)


def publish_summary(
    name: str,
    results: dict[str, list[dict[str, Any]]],
    attacks: list[dict[str, Any]],
    epochs: int,
    seeds: int,
) -> None:
    """`publish_peers` rows (per seed) and the findings section appended to results/<name>.md."""
    rows, said = [], []
    for attack in attacks[0]:
        per = [a[attack] for a in attacks]
        largest = max(p["diff"] for p in per)
        acc_ours, acc_theirs = [p["ours"] for p in per], [p["theirs"] for p in per]
        rows.append(
            peer_row(
                "fgsm" if attack == "FGSM" else f"pgd (steps={ATTACK_STEPS}, no random start)",
                f"torchattacks {attack}",
                f"test accuracy under {attack}, eps {EPS}",
                acc_ours,
                acc_theirs,
                time_ratio=[p["ratio"] for p in per],
                note=f"adversarial examples: max abs difference {largest:.1e}",
            )
        )
        said.append(
            f"- **{attack} beside torchattacks'**: adversarial examples differ by at most "
            f"{largest:.1e}; robust accuracy {paired(acc_ours, acc_theirs)}; "
            f"one attack call {ratio_text([p['ratio'] for p in per])} torchattacks' time."
        )
    ours, peer, standard = "ours AdversarialTraining", "torchattacks loop", "standard"

    def col(method: str, key: str) -> list[float]:
        return [r[key] for r in results[method]]

    wall = [a / b for a, b in zip(col(ours, "seconds"), col(peer, "seconds"), strict=True)]
    cpu = [a / b for a, b in zip(col(ours, "cpu"), col(peer, "cpu"), strict=True)]
    for key, metric in (("clean", "clean test accuracy"), ("pgd", f"PGD-{EVAL_STEPS} accuracy")):
        rows.append(
            peer_row(
                f"AdversarialTraining({EPS}, pgd, steps={TRAIN_STEPS})",
                "a training_step calling torchattacks PGD",
                metric,
                col(ours, key),
                col(peer, key),
                time_ratio=wall,
                time_ratio_cpu=cpu,
                baseline={"name": standard, "values": col(standard, key)},
            )
        )
    said.append(
        f"- **AdversarialTraining beside the torchattacks loop** (ours - peer, paired): clean "
        f"accuracy {paired(col(ours, 'clean'), col(peer, 'clean'))}, PGD-{EVAL_STEPS} accuracy "
        f"{paired(col(ours, 'pgd'), col(peer, 'pgd'))}; fit time {ratio_text(wall)} wall, "
        f"{ratio_text(cpu)} CPU."
    )
    said.append(
        f"- **The literature's effect** (ours against standard training, paired): PGD-"
        f"{EVAL_STEPS} accuracy {paired(col(ours, 'pgd'), col(standard, 'pgd'))}, clean accuracy "
        f"{paired(col(ours, 'clean'), col(standard, 'clean'))}."
    )
    publish_peers(
        name,
        rows,
        command="make peers-env && nice -n 10 benchmarks/.peers-venv/bin/python "
        f"benchmarks/peers_robustness.py --epochs {epochs} --seeds {seeds}",
    )
    append_findings(name, said)


if __name__ == "__main__":
    main()
