"""MixUp, CutMix and LabelSmoothing beside timm and torch on the MNIST-1D CNN.

Same model (`Mnist1dCNN` + a 125-10 head), data (`Mnist1dDataModule(val_fraction=0.0)`:
the paper's 4,000 training / 1,000 test signals), optimizer (Adam lr 1e-2), batch (100),
epochs and seeds for every variant; one process, the variants of a seed interleaved and
their order rotated from seed to seed, so each time figure is a ratio of fits measured
side by side:

- ``none``: a plain LightningModule that calls ``F.cross_entropy`` (the baseline);
- ``ours MixUp``: the same module, unchanged, with ``MixUp(alpha=0.4)``;
- ``timm MixUp``: timm's ``Mixup(mixup_alpha=0.4, cutmix_alpha=0, label_smoothing=0)``
  and ``SoftTargetCrossEntropy`` in ``training_step``, as timm's training script uses them;
- ``ours CutMix``: ``CutMix(alpha=1.0)`` on the signals as 1 x 40 images
  (``layout="signal"`` gives ``(N, 1, 40)``, a 1-pixel-high image to CutMix);
- ``timm CutMix``: ``Mixup(mixup_alpha=0, cutmix_alpha=1.0)``, tried on the same batch (it
  is reported as an error when timm refuses 1-D input);
- ``ours LabelSmoothing``: ``LabelSmoothing(0.1)`` on the plain module;
- ``torch LabelSmoothing``: ``F.cross_entropy(..., label_smoothing=0.1)``.

Test accuracy mean ± std over seeds; the paired difference (ours - peer, same seed) with
its std; the fit-time ratio ours / peer (mean of the per-seed ratios, with its std).

Environment: timm pulls torchvision, and PyPI's torchvision does not load beside the CPU
torch 2.13.0 of the library's venv (``operator torchvision::nms does not exist``, which
breaks ``import lightning``). The peers therefore run in their own venv, built by
``make peers-env`` (``benchmarks/.peers-venv``: torch 2.14.1 + torchvision 0.29.1, a
matching pair, this package editable, timm, torchattacks). Both sides of every ratio run
in that venv, in one process. Run::

    make peers-env
    nice -n 10 benchmarks/.peers-venv/bin/python benchmarks/peers_mixing.py
    nice -n 10 benchmarks/.peers-venv/bin/python benchmarks/peers_mixing.py --quick

One intra-op thread: on a loaded 2-core machine the default made each step 10-30x slower.
"""

import argparse
import gc
import logging
import operator
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from lightning.pytorch import Callback, LightningModule, seed_everything
from torch import nn
from typing_extensions import override

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import publish, publish_peers, quiet_trainer
from _peers import append_findings, paired, peer_row, ratio_text

from lightning_recipes.augmentation import CutMix, LabelSmoothing, MixUp
from lightning_recipes.data import Mnist1dDataModule
from lightning_recipes.modules import Mnist1dCNN

try:
    from timm.data import Mixup
    from timm.loss import SoftTargetCrossEntropy
except ImportError as error:  # the library's venv: no timm there, by design
    raise SystemExit(
        f"timm is not importable ({error}). Run this benchmark in the peers' venv: "
        "`make peers-env`, then benchmarks/.peers-venv/bin/python benchmarks/peers_mixing.py"
    ) from error

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

ALPHA = 0.4
CUTMIX_ALPHA = 1.0
SMOOTHING = 0.1
PAIRS = (
    ("MixUp", "ours MixUp", "timm MixUp"),
    ("CutMix", "ours CutMix", "timm CutMix"),
    ("LabelSmoothing", "ours LabelSmoothing", "torch LabelSmoothing"),
)
VARIANTS = ("none", *(v for _, ours, peer in PAIRS for v in (ours, peer)))


def cnn() -> nn.Module:
    return nn.Sequential(Mnist1dCNN(), nn.Linear(125, 10))


class Plain(LightningModule):
    """Cross-entropy and Adam at a fixed learning rate; ``smoothing`` is torch's own."""

    def __init__(self, smoothing: float = 0.0) -> None:
        super().__init__()
        self.net = cnn()
        self.smoothing = smoothing

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y, label_smoothing=self.smoothing)

    @override
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-2)


class TimmMixed(Plain):
    """timm's way: ``Mixup`` turns (x, y) into (mixed x, soft targets), then soft CE."""

    def __init__(self, mixup_alpha: float, cutmix_alpha: float) -> None:
        super().__init__()
        self.mix = Mixup(
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
            label_smoothing=0.0,
            num_classes=10,
        )
        self.soft_ce = SoftTargetCrossEntropy()

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        x, soft = self.mix(x, y)
        return self.soft_ce(self(x), soft)  # type: ignore[no-any-return]


def build(variant: str) -> tuple[LightningModule, list[Callback], str]:
    """The module, callbacks and data layout of a variant."""
    if variant == "ours MixUp":
        return Plain(), [MixUp(ALPHA)], "flat"
    if variant == "timm MixUp":
        return TimmMixed(ALPHA, 0.0), [], "flat"
    if variant == "ours CutMix":
        return Plain(), [CutMix(CUTMIX_ALPHA)], "signal"
    if variant == "timm CutMix":
        return TimmMixed(0.0, CUTMIX_ALPHA), [], "signal"
    if variant == "ours LabelSmoothing":
        return Plain(), [LabelSmoothing(SMOOTHING)], "flat"
    if variant == "torch LabelSmoothing":
        return Plain(SMOOTHING), [], "flat"
    return Plain(), [], "flat"


def run(variant: str, seed: int, epochs: int) -> dict[str, Any]:
    seed_everything(seed, verbose=False)  # also seeds numpy's global RNG, which timm draws from
    model, callbacks, layout = build(variant)
    data = Mnist1dDataModule(batch_size=100, val_fraction=0.0, seed=seed, layout=layout)
    trainer = quiet_trainer(max_epochs=epochs, callbacks=callbacks)
    gc.collect()  # each fit starts from a collected heap: no pause left over from the last
    start, cpu = time.perf_counter(), time.process_time()
    try:
        trainer.fit(model, datamodule=data)
    except Exception as error:  # timm's CutMix on 1-D signals
        return {"error": f"{type(error).__name__}: {error}"}
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert data.test_dataset is not None
    model.eval()
    with torch.no_grad():
        predicted = model(data.test_dataset.features).argmax(-1)
    acc = float((predicted == data.test_dataset.targets).float().mean())
    return {"acc": acc, "seconds": seconds, "cpu": cpu}


def mean_std(values: list[float], digits: int = 3) -> str:
    if not values:
        return "—"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):+.{digits}f} ± {std:.{digits}f}".lstrip("+")


def check_timm_cutmix_1d() -> str:
    """What timm's CutMix does with a batch of 1-D signals, flat and ``(N, 1, L)``."""
    mix = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0, num_classes=10)
    y = torch.arange(10) % 10
    found = []
    for shape in ((10, 40), (10, 1, 40)):
        x = torch.randn(*shape)
        try:
            mixed, _ = mix(x.clone(), y)
            changed = (mixed != x).any(dim=tuple(range(1, x.dim()))).float().mean()
            found.append(f"{shape}: ran ({float(changed):.0%} of samples changed)")
        except Exception as error:
            found.append(f"{shape}: {type(error).__name__}: {error}")
    return "; ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 2 epochs: a smoke run")
    parser.add_argument("--name", default="peers_mixing", help="results file name")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.seeds = 2, 2
    torch.set_num_threads(1)
    np.seterr(all="ignore")
    variants: list[str] = list(args.variants)
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for variant in variants:  # warm-up: the dataset is generated once (cached), first calls
        run(variant, 0, 1)
    for seed in range(args.seeds):
        shift = seed % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            result = run(variant, seed, args.epochs)
            results[variant].append(result)
            shown = result.get("error") or f"{result['acc']:.3f} {result['seconds']:.1f}s"
            print(f"seed {seed} {variant:22s} {shown}", flush=True)

    def accs(variant: str) -> list[float]:
        return [r["acc"] for r in results.get(variant, []) if "acc" in r]

    def paired(ours: str, peer: str, op: Callable[[float, float], float], key: str) -> list[float]:
        pairs = zip(results.get(ours, []), results.get(peer, []), strict=False)
        return [op(a[key], b[key]) for a, b in pairs if "acc" in a and "acc" in b]

    rows: list[list[Any]] = [["none", "—", mean_std(accs("none")), "—", "—", "—", "—"]]
    for recipe, ours, peer in PAIRS:
        if ours not in results and peer not in results:
            continue
        errors = [r["error"] for r in results.get(peer, []) if "error" in r]
        peer_acc = f"fails: {errors[0]}" if errors else mean_std(accs(peer))
        diffs = paired(ours, peer, operator.sub, "acc")
        ratios = paired(ours, peer, operator.truediv, "seconds")
        cpu_ratios = paired(ours, peer, operator.truediv, "cpu")
        vs_none = paired(ours, "none", operator.sub, "acc")
        rows.append(
            [
                recipe,
                mean_std(accs(ours)),
                peer_acc,
                mean_std(diffs) if diffs else "—",
                f"{mean_std(ratios, 3)}x" if ratios else "—",
                f"{mean_std(cpu_ratios, 3)}x" if cpu_ratios else "—",
                mean_std(vs_none) if vs_none else "—",
            ]
        )
    seconds = {
        v: statistics.mean(r["seconds"] for r in results[v] if "seconds" in r)
        for v in variants
        if any("seconds" in r for r in results[v])
    }
    per_fit = ", ".join(f"{v} {s:.1f} s" for v, s in seconds.items())
    publish(
        args.name,
        "MixUp, CutMix, LabelSmoothing beside timm and torch (MNIST-1D CNN)",
        [
            "recipe",
            "ours acc",
            "peer acc",
            "ours - peer (paired)",
            "fit time ours / peer",
            "CPU time ours / peer",
            "ours - none (paired)",
        ],
        rows,
        f"Peers: timm `Mixup(mixup_alpha={ALPHA}, cutmix_alpha=0, label_smoothing=0)` + "
        f"`SoftTargetCrossEntropy` for MixUp; timm `Mixup(mixup_alpha=0, "
        f"cutmix_alpha={CUTMIX_ALPHA})` for CutMix; `F.cross_entropy(label_smoothing="
        f"{SMOOTHING})` for LabelSmoothing. Ours: `MixUp({ALPHA})`, `CutMix({CUTMIX_ALPHA})` "
        f'(on `layout="signal"`, a 1 x 40 image), `LabelSmoothing({SMOOTHING})` on a module '
        "that calls `F.cross_entropy` itself. MNIST-1D CNN (`Mnist1dCNN` + Linear 125-10, "
        f"5,210 parameters), Adam lr 1e-2, batch 100, {args.epochs} epochs "
        f"({args.epochs * 40} steps), paper split 4,000/1,000, seeds {tuple(range(args.seeds))} "
        "(initialisation, shuffle and the mixing draws). Baseline `none`: the plain module. "
        "Accuracy: mean ± std over seeds; paired differences and time ratios per seed, "
        "then mean ± std (fit time: wall clock of `trainer.fit`; CPU time: the process's, "
        "less disturbed by the other jobs on this shared 2-core machine). All variants in "
        "one process, interleaved, order rotated per seed. "
        f"Mean fit seconds: {per_fit}. timm's CutMix on 1-D signals: "
        f"{check_timm_cutmix_1d()}. timm mixes each sample with the flipped batch "
        "(`x.flip(0)`) and draws `lam` from numpy's global RNG; ours draws a random "
        "permutation and `lam` from private generators seeded per batch (resumable, "
        "per rank).",
        command=(
            "make peers-env && nice -n 10 benchmarks/.peers-venv/bin/python "
            f"benchmarks/peers_mixing.py --epochs {args.epochs} --seeds {args.seeds}"
        ),
    )
    publish_summary(args.name, results, args.epochs, args.seeds)


def publish_summary(
    name: str, results: dict[str, list[dict[str, Any]]], epochs: int, seeds: int
) -> None:
    """`publish_peers` rows (accuracy and time ratios per seed) and the findings section."""

    def col(variant: str, key: str) -> list[float]:
        return [r[key] for r in results.get(variant, []) if key in r]

    rows, said = [], []
    none = col("none", "acc")
    for recipe, ours, peer in PAIRS:
        if not col(ours, "acc"):
            continue
        label = {"MixUp": f"MixUp({ALPHA})", "CutMix": f"CutMix({CUTMIX_ALPHA})"}.get(
            recipe, f"LabelSmoothing({SMOOTHING})"
        )
        errors = [r["error"] for r in results.get(peer, []) if "error" in r]
        theirs = None if errors or not col(peer, "acc") else col(peer, "acc")
        wall = cpu = None
        if theirs is not None:
            wall = [a / b for a, b in zip(col(ours, "seconds"), col(peer, "seconds"), strict=True)]
            cpu = [a / b for a, b in zip(col(ours, "cpu"), col(peer, "cpu"), strict=True)]
        rows.append(
            peer_row(
                label,
                peer,
                "test accuracy",
                col(ours, "acc"),
                theirs,
                time_ratio=wall,
                time_ratio_cpu=cpu,
                note=f"the peer fails: {errors[0]}" if errors else "",
                baseline={"name": "none", "values": none} if len(none) == seeds else None,
            )
        )
        text = f"- **{label} beside {peer}**: "
        if theirs is None:
            text += f"the peer fails ({errors[0] if errors else 'not run'})"
        else:
            text += (
                f"test accuracy {paired(col(ours, 'acc'), theirs)} (ours - peer, paired); fit "
                f"time {ratio_text(wall or [])} wall, {ratio_text(cpu or [])} CPU"
            )
            if recipe == "MixUp":
                mean = statistics.mean(cpu or [])
                text += f" (target at most 1.05x: {'met' if mean <= 1.05 else '**not met**'})"
        if len(none) == seeds:
            text += f"; against no augmentation {paired(col(ours, 'acc'), none)}"
            if theirs is not None:
                text += f" (the peer's {paired(theirs, none)})"
        said.append(text + ".")
    publish_peers(
        name,
        rows,
        command="make peers-env && nice -n 10 benchmarks/.peers-venv/bin/python "
        f"benchmarks/peers_mixing.py --epochs {epochs} --seeds {seeds}",
    )
    append_findings(name, said)


if __name__ == "__main__":
    main()
