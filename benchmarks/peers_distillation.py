"""Knowledge distillation on MNIST-1D: the paper's MLP taught by its CNN, beside torchdistill.

Per seed, the teacher (the paper's CNN: `Mnist1dCNN` + a 125-10 head) is trained once with
the paper's settings, then three students (the paper's MLP, 40-100-100-10 with a residual
second layer) are trained from the same initialisation and shuffle, interleaved, their
order rotated from seed to seed, in one process:

- ``alone``: a plain LightningModule calling ``F.cross_entropy(self(x), y)``;
- ``ours``: the same module, unchanged, with ``Distillation(teacher, temperature=4,
  alpha=0.9)``;
- ``ours soft``: ``Distillation(teacher, temperature=2, alpha=0.5)``, a softer setting
  (ours only), to see whether the default is the reason for what the first shows;
- ``torchdistill``: torchdistill's ``KDLoss`` called in ``training_step`` on the student's
  and the teacher's logits (its ``alpha`` weighs the cross-entropy: 0.1 here, ``beta`` =
  0.9 the KL term), the teacher run by hand under ``no_grad`` in eval mode.

Adam lr 1e-2, batch 100, the paper's 4,000/1,000 split (``val_fraction=0.0``). Test
accuracy mean ± std over seeds; the paired differences; the CPU-time ratio per fit (and per
epoch: the fits have the same number of epochs) with / without distillation. Before the
fits, ours and torchdistill's loss are compared on random logits (max |difference|), and
torchdistill's ``alpha=0`` case is checked (it returns the KL without ``tau^2``).

Environment: torchdistill needs torchvision, which does not load beside the library's CPU
torch 2.13.0 (DESIGN.md); run in the peers' venv (``make peers-env``), where torchdistill
1.1.5 is installed ``--no-deps`` (its loss module needs only torch). Without torchdistill
the ``torchdistill`` variant is left out and said so::

    nice -n 19 benchmarks/.peers-venv/bin/python benchmarks/peers_distillation.py
    nice -n 19 benchmarks/.peers-venv/bin/python benchmarks/peers_distillation.py --quick

One intra-op thread: on a loaded 2-core machine the default made each step 10-30x slower.
"""

import argparse
import gc
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, seed_everything
from torch import nn
from typing_extensions import override

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import mean_std, publish, publish_peers, quiet_trainer
from _peers import append_findings, paired, peer_row, ratio_text
from mnist1d_baselines import PaperMLP, Plain

from lightning_recipes.data import Mnist1dDataModule
from lightning_recipes.distillation import Distillation, distillation_loss
from lightning_recipes.modules import Mnist1dCNN

try:
    from torchdistill.losses.mid_level import KDLoss
except ImportError as error:  # the library's venv: no torchvision, so no torchdistill
    KDLoss = None
    TORCHDISTILL_ERROR = f"{type(error).__name__}: {error}"
else:
    TORCHDISTILL_ERROR = ""

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

TEMPERATURE, ALPHA = 4.0, 0.9
SOFT_T, SOFT_ALPHA = 2.0, 0.5  # a softer setting, ours only: is the default the reason?
VARIANTS = ("alone", "ours", "torchdistill", "ours soft")


class TorchdistillKD(Plain):
    """torchdistill's KDLoss in ``training_step``, the teacher run by hand (frozen, eval)."""

    def __init__(self, net: nn.Module, teacher: nn.Module) -> None:
        super().__init__(net)
        self.teacher = [teacher.eval().requires_grad_(False)]  # a list: not a submodule
        assert KDLoss is not None
        self.kd = KDLoss("s", "output", "t", "output", TEMPERATURE, alpha=1.0 - ALPHA)

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        with torch.no_grad():
            teacher_logits = self.teacher[0](x)
        student = {"s": {"output": self(x)}}
        return self.kd(student, {"t": {"output": teacher_logits}}, y)  # type: ignore[no-any-return]


def cnn() -> nn.Module:
    return nn.Sequential(Mnist1dCNN(), nn.Linear(125, 10))


def accuracy(net: nn.Module, data: Mnist1dDataModule) -> float:
    assert data.test_dataset is not None
    net.eval()
    with torch.no_grad():
        predicted = net(data.test_dataset.features).argmax(-1)
    return float((predicted == data.test_dataset.targets).float().mean())


def train_teacher(seed: int, steps: int) -> tuple[nn.Module, float]:
    seed_everything(seed, verbose=False)
    data = Mnist1dDataModule(batch_size=100, val_fraction=0.0, seed=seed)
    model = Plain(cnn())
    quiet_trainer(max_steps=steps, max_epochs=-1).fit(model, datamodule=data)
    return model.net.eval(), accuracy(model, data)


def run(variant: str, seed: int, steps: int, teacher: nn.Module) -> dict[str, Any]:
    seed_everything(seed, verbose=False)
    data = Mnist1dDataModule(batch_size=100, val_fraction=0.0, seed=seed)
    callbacks: list[Callback] = []
    model: LightningModule
    if variant == "torchdistill":
        model = TorchdistillKD(PaperMLP(), teacher)
    else:
        model = Plain(PaperMLP())
        if variant == "ours":
            callbacks = [Distillation(teacher, temperature=TEMPERATURE, alpha=ALPHA)]
        elif variant == "ours soft":
            callbacks = [Distillation(teacher, temperature=SOFT_T, alpha=SOFT_ALPHA)]
    trainer = quiet_trainer(max_steps=steps, max_epochs=-1, callbacks=callbacks)
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule=data)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"acc": accuracy(model, data), "seconds": seconds, "cpu": cpu}


class StepLosses(Callback):
    """The training loss of every step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    @override
    def on_train_batch_end(
        self, trainer: Any, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.losses.append(float(outputs["loss"]))


def trajectory_check(teacher: nn.Module, steps: int = 400) -> str:
    """Ours and torchdistill's training, step by step, from the same start (seed 0)."""
    if KDLoss is None:
        return ""
    losses, params = [], []
    for variant in ("ours", "torchdistill"):
        record = StepLosses()
        seed_everything(0, verbose=False)
        data = Mnist1dDataModule(batch_size=100, val_fraction=0.0, seed=0)
        if variant == "ours":
            model: LightningModule = Plain(PaperMLP())
            callbacks = [Distillation(teacher, temperature=TEMPERATURE, alpha=ALPHA), record]
        else:
            model, callbacks = TorchdistillKD(PaperMLP(), teacher), [record]
        quiet_trainer(max_steps=steps, max_epochs=-1, callbacks=callbacks).fit(model, data)
        losses.append(record.losses)
        params.append(torch.cat([p.detach().flatten() for p in model.net.parameters()]))
    gap = max(abs(a - b) for a, b in zip(*losses, strict=True))
    drift = float((params[0] - params[1]).abs().max())
    return (
        f"trained side by side from the same start for {steps} steps, ours and torchdistill's "
        f"step losses differ by at most {gap:.1e} and the weights by {drift:.1e} (float "
        "rounding of the same sums, in another order): the same training, whose rounding "
        "then grows over the 6,000 steps into the per-seed spread of the table"
    )


def formula_check() -> str:
    """Ours against torchdistill's KDLoss on random logits, and its alpha=0 case."""
    if KDLoss is None:
        return f"torchdistill not importable here ({TORCHDISTILL_ERROR}): formula not compared"
    generator = torch.Generator().manual_seed(0)
    gaps = []
    for temperature, alpha in ((4.0, 0.9), (1.0, 0.5), (8.0, 0.3)):
        s = torch.randn(256, 10, generator=generator, dtype=torch.float64) * 3
        t = torch.randn(256, 10, generator=generator, dtype=torch.float64) * 3
        y = torch.randint(0, 10, (256,), generator=generator)
        kd = KDLoss("s", "o", "t", "o", temperature, alpha=1.0 - alpha)
        theirs = kd({"s": {"o": s}}, {"t": {"o": t}}, y)
        ours = distillation_loss(s, t, y, temperature=temperature, alpha=alpha)
        gaps.append(float((ours - theirs).abs() / theirs.abs()))
    s = torch.randn(64, 10, generator=generator)
    t = torch.randn(64, 10, generator=generator)
    y = torch.randint(0, 10, (64,), generator=generator)
    teacher_only = KDLoss("s", "o", "t", "o", 4.0, alpha=0.0)({"s": {"o": s}}, {"t": {"o": t}}, y)
    ours_only = distillation_loss(s, t, y, temperature=4.0, alpha=1.0)
    return (
        f"ours equals torchdistill's `KDLoss` (its `alpha` = our `1 - alpha`) to a relative "
        f"{max(gaps):.1e} in float64 at (T, alpha) = (4, 0.9), (1, 0.5), (8, 0.3); with its "
        f"`alpha=0` (the teacher's term alone) `KDLoss` returns the KL without `tau^2`: "
        f"{float(teacher_only):.4f} against ours {float(ours_only):.4f} at T=4 "
        f"({float(ours_only / teacher_only):.1f}x), so its loss scale jumps between alpha=0 "
        "and alpha>0"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 200 steps: a smoke run")
    parser.add_argument("--name", default="peers_distillation", help="results file name")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.seeds = 200, 2
    torch.set_num_threads(1)
    variants = [v for v in VARIANTS if v != "torchdistill" or KDLoss is not None]
    check = formula_check()
    print(check, flush=True)
    warm_teacher, _ = train_teacher(0, 20)
    for variant in variants:  # warm-up: the dataset generated (cached), first calls made
        run(variant, 0, 20, warm_teacher)
    side_by_side = trajectory_check(train_teacher(0, 300)[0], 400 if not args.quick else 50)
    if side_by_side:
        check += f"; {side_by_side}"
        print(side_by_side, flush=True)
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    teachers: list[float] = []
    for seed in range(args.seeds):
        teacher, teacher_acc = train_teacher(seed, args.steps)
        teachers.append(teacher_acc)
        print(f"seed {seed} teacher {teacher_acc:.3f}", flush=True)
        shift = seed % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            result = run(variant, seed, args.steps, teacher)
            results[variant].append(result)
            print(
                f"seed {seed} {variant:12s} {result['acc']:.3f} {result['cpu']:.1f}s cpu",
                flush=True,
            )
    publish_results(args, results, teachers, check)


def publish_results(
    args: argparse.Namespace,
    results: dict[str, list[dict[str, Any]]],
    teachers: list[float],
    check: str,
) -> None:
    def col(variant: str, key: str) -> list[float]:
        return [r[key] for r in results.get(variant, [])]

    def ratios(a: str, b: str, key: str) -> list[float]:
        return [x / y for x, y in zip(col(a, key), col(b, key), strict=True)]

    alone = col("alone", "acc")
    has_peer = "torchdistill" in results
    rows: list[list[Any]] = [
        ["teacher: CNN alone", mean_std(teachers), "—", "—", "—", "—"],
        ["student: MLP alone", mean_std(alone), "—", "—", "1x", "1x"],
    ]
    for variant, label in (
        ("ours", f"MLP + Distillation(T={TEMPERATURE:g}, alpha={ALPHA}) (ours)"),
        ("torchdistill", "MLP + torchdistill KDLoss"),
        ("ours soft", f"MLP + Distillation(T={SOFT_T:g}, alpha={SOFT_ALPHA}) (ours)"),
    ):
        if variant not in results:
            continue
        rows.append(
            [
                label,
                mean_std(col(variant, "acc")),
                paired(col(variant, "acc"), alone),
                paired(col("ours", "acc"), col("torchdistill", "acc"))
                if variant == "ours" and has_peer
                else "—",
                ratio_text(ratios(variant, "alone", "cpu")),
                ratio_text(ratios(variant, "alone", "seconds")),
            ]
        )
    command = (
        "make peers-env && nice -n 19 benchmarks/.peers-venv/bin/python "
        f"benchmarks/peers_distillation.py --steps {args.steps} --seeds {args.seeds}"
    )
    epochs = args.steps // 40
    publish(
        args.name,
        "Knowledge distillation on MNIST-1D: the paper's MLP taught by its CNN",
        [
            "run",
            "test acc (mean ± std)",
            "- MLP alone (paired)",
            "ours - torchdistill (paired)",
            "CPU time / MLP alone",
            "wall time / MLP alone",
        ],
        rows,
        f"Teacher: the paper's CNN (`Mnist1dCNN` + Linear 125-10), trained once per seed. "
        f"Student: the paper's MLP (40-100-100-10, residual second layer, 15,210 parameters). "
        f"`Distillation(teacher, temperature={TEMPERATURE}, alpha={ALPHA})` on a module that "
        f"calls `F.cross_entropy` itself; torchdistill 1.1.5 `KDLoss(temperature={TEMPERATURE}, "
        f"alpha={1 - ALPHA:.1f})` (its alpha weighs the cross-entropy) in `training_step`. "
        f"Adam lr 1e-2, batch 100, {args.steps} steps ({epochs} epochs, so the time ratios are "
        f"per epoch too), paper split 4,000/1,000, seeds {tuple(range(args.seeds))} "
        "(teacher and student initialisation, shuffle). Accuracy mean ± std over seeds; "
        "paired differences (same seed, same teacher) and per-seed time ratios, mean ± std. "
        "All students of a seed in one process, interleaved, order rotated per seed. "
        f"Loss check: {check}."
        + ("" if has_peer else f" torchdistill was not run: {TORCHDISTILL_ERROR}."),
        command=command,
    )
    rows_json = [
        peer_row(
            f"Distillation(T={TEMPERATURE:g}, alpha={ALPHA})",
            "torchdistill KDLoss" if has_peer else "none (torchdistill not installed)",
            "test accuracy",
            col("ours", "acc"),
            col("torchdistill", "acc") if has_peer else None,
            time_ratio=ratios("ours", "torchdistill", "seconds") if has_peer else None,
            time_ratio_cpu=ratios("ours", "torchdistill", "cpu") if has_peer else None,
            baseline={"name": "MLP alone", "values": alone},
            note=f"teacher CNN {mean_std(teachers)}; the student alone {mean_std(alone)}",
        )
    ]
    publish_peers(args.name, rows_json, command=command)
    said = [
        f"- **Distillation beside the student alone**: test accuracy "
        f"{paired(col('ours', 'acc'), alone)} (distilled - alone, paired; the teacher "
        f"{mean_std(teachers)}); CPU time {ratio_text(ratios('ours', 'alone', 'cpu'))} the "
        "student's alone (the teacher's forward pass on every batch)."
    ]
    if has_peer:
        said.append(
            f"- **Beside torchdistill's KDLoss**: test accuracy "
            f"{paired(col('ours', 'acc'), col('torchdistill', 'acc'))} (ours - torchdistill); "
            f"CPU time {ratio_text(ratios('ours', 'torchdistill', 'cpu'))}."
        )
    if "ours soft" in results:
        said.append(
            f"- **A softer setting** (T={SOFT_T:g}, alpha={SOFT_ALPHA}): test accuracy "
            f"{paired(col('ours soft', 'acc'), alone)} (distilled - alone, paired)."
        )
    said.append(f"- **The loss**: {check}.")
    append_findings(args.name, said)


if __name__ == "__main__":
    main()
