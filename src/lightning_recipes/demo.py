"""The demo: train a Classifier on the bundled digits or MNIST-1D and write a report."""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch import Callback, Trainer, seed_everything
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from torchmetrics.functional.classification import multiclass_confusion_matrix

from lightning_recipes._core.contract import run_summaries
from lightning_recipes._core.optional import require
from lightning_recipes._core.trainer import trainer_callbacks
from lightning_recipes.data import DigitsDataModule, Mnist1dDataModule
from lightning_recipes.data.bundled import BundledDataModule
from lightning_recipes.errors import choice_error, config_error
from lightning_recipes.history import MetricHistory
from lightning_recipes.modules import MLP, Classifier, Mnist1dCNN, SmallCNN
from lightning_recipes.report import RunReport, write_report

__all__ = ["DEMO_DATA", "DemoResult", "new_version_dir", "parse_imbalance", "run_demo"]


@dataclass
class DemoResult:
    """What `run_demo` produced.

    Attributes:
        run_dir: This run's own folder (``<out_dir>/<name>/version_<n>``) holding the
            report, metrics, figures and logs.
        report: The measured figures.
        files: The report files written, by kind.
        seconds: Wall-clock time of the whole run.
    """

    run_dir: Path
    report: RunReport
    files: dict[str, Path]
    seconds: float


def parse_imbalance(text: str) -> dict[int, float]:
    """Parse ``"3:0.1,8:0.05"`` into ``{3: 0.1, 8: 0.05}``.

    Args:
        text: Comma-separated ``class:fraction`` pairs; empty for none.

    Returns:
        The mapping.

    Examples:
        >>> parse_imbalance("3:0.1, 8:0.05")
        {3: 0.1, 8: 0.05}
    """
    result: dict[int, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        cls, sep, fraction = item.partition(":")
        try:
            if not sep:
                raise ValueError(item)
            result[int(cls)] = float(fraction)
        except ValueError as err:
            raise config_error(
                "imbalance",
                text,
                "Write class:fraction pairs separated by commas, e.g. 3:0.1,8:0.1.",
            ) from err
    return result


def new_version_dir(folder: Path) -> Path:
    """Create and return ``folder/version_<n>``, one past the highest version already there.

    Lightning's logger convention: every run gets its own folder, so a second run never
    mixes its logs, checkpoints or report with the first one's.

    Args:
        folder: The folder holding the versions (created if needed).

    Returns:
        The new, empty version folder.

    Examples:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> [new_version_dir(root).name for _ in range(2)]
        ['version_0', 'version_1']
    """
    folder.mkdir(parents=True, exist_ok=True)
    taken = [
        int(entry.name.removeprefix("version_"))
        for entry in folder.iterdir()
        if entry.name.startswith("version_") and entry.name.removeprefix("version_").isdigit()
    ]
    version = max(taken, default=-1) + 1
    while True:
        candidate = folder / f"version_{version}"
        try:
            candidate.mkdir()  # fails if a concurrent run took it: try the next one
        except FileExistsError:
            version += 1
            continue
        return candidate


def _logger(run_dir: Path) -> Logger:
    try:
        require("tensorboard", extra="demo", feature="The demo's TensorBoard log")
    except ImportError:
        return CSVLogger(save_dir=run_dir, name="", version="logs")
    return TensorBoardLogger(save_dir=run_dir, name="", version="logs", default_hp_metric=False)


DEMO_RECIPES = (
    "class-weighting",
    "find-lr",
    "early-stopping",
    "freeze",
    "attribution",
    "weight-penalty",
    "weight-init",
    "activations",
    "mixup",
    "cutmix",
    "label-smoothing",
    "image-augmentation",
    "adversarial",
    "robustness",
    "weight-average",
    "snapshot-ensemble",
)
"""Recipes the demo can add, in the order their callbacks run."""


DEMO_DATA = ("digits", "mnist1d")
"""Data sets the demo trains on: scikit-learn's 8x8 digits, or MNIST-1D's 40-long signals."""

DemoData = Literal["digits", "mnist1d"]

MNIST1D_SHAPE = (1, 1, 40)
"""An MNIST-1D signal seen as a ``(C, H, W)`` image by the image recipes (a 1 x 40 strip)."""


PRETRAIN_EPOCHS = 10
"""Epochs of the source task that gives ``freeze`` a pretrained backbone."""


def _pretrain(
    backbone: torch.nn.Module,
    data: BundledDataModule,
    epochs: int,
    progress: bool,
    weighted: bool,
) -> None:
    """Pretrain ``backbone`` in place on the training split, under a head that is discarded.

    Freezing only makes sense for a backbone that already knows something: freezing a
    random one trains a linear model on random features. The demo has no second dataset,
    so its source task is the training split itself under a separate head (a warm start),
    which costs ``epochs`` more epochs of compute; the report says so. With ``weighted``
    (``class-weighting`` chosen too) the source task uses the same weighted loss, so the
    features it learns do not neglect the rare classes that the target task weights up.
    """
    source = Classifier(backbone, num_classes=10, lr=3e-3, scheduler="onecycle")
    callbacks: list[Callback] = []
    if weighted:
        from lightning_recipes.imbalance import ClassWeighting

        callbacks.append(ClassWeighting(log=False))
    Trainer(
        callbacks=callbacks,
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
    ).fit(source, datamodule=data)


def _recipe_callbacks(
    recipes: Sequence[str],
    max_epochs: int,
    layout: Literal["flat", "image"] = "flat",
    data: DemoData = "digits",
) -> list[Callback]:
    """The demo's callbacks for the chosen recipes, in a working order.

    On MNIST-1D (always the flat layout, ``(N, 40)``) the image recipes see each signal as
    a 1 x 40 image: CutMix pastes a segment of another signal, the augmentation shifts and
    stretches along time (no rotation, shear or flip: a reversed or tilted signal is another
    signal); the signals are standardised, not in [0, 1], so the attacks have no valid range
    to clip to and their radii are in standard deviations.
    """
    chosen = set(recipes)
    signals = data == "mnist1d"
    callbacks: list[Callback] = []
    if "class-weighting" in chosen:  # before the LR finder: it sweeps the weighted loss
        from lightning_recipes.imbalance import ClassWeighting

        callbacks.append(ClassWeighting())
    if "freeze" in chosen:
        from lightning_recipes.finetuning import Freezer

        callbacks.append(
            Freezer(unfreeze="gradual", every_n_epochs=max(max_epochs // 7, 1), lr_decay=0.5)
        )
    if "find-lr" in chosen:
        from lightning_recipes.lr import LRFinder

        callbacks.append(LRFinder())
    if "early-stopping" in chosen:
        from lightning_recipes.stopping import EarlyStopping

        # Macro F1, not the loss: with rare classes the best loss can come from an epoch
        # that still neglects them (measured: benchmarks/demo_recipes.py).
        callbacks.append(
            EarlyStopping("val_macro_f1", mode="max", patience=5, restore_best_weights=True)
        )
    if "weight-penalty" in chosen:
        from lightning_recipes.regularization import WeightPenalty

        callbacks.append(WeightPenalty(l2=1e-4))
    if "weight-init" in chosen:
        from lightning_recipes.regularization import WeightInit

        callbacks.append(WeightInit("kaiming_normal"))
    if "activations" in chosen:
        from lightning_recipes.regularization import ActivationMonitor

        callbacks.append(ActivationMonitor())
    flat = MNIST1D_SHAPE if signals else (1, 8, 8) if layout == "flat" else None
    if "image-augmentation" in chosen:  # images first; no flip: a mirrored digit is another
        from lightning_recipes.augmentation import ImageAugmentation

        callbacks.append(
            ImageAugmentation(translate=(0.1, 0.0), scale=(0.9, 1.1), image_shape=flat)
            if signals
            else ImageAugmentation(rotation=10, scale=(0.9, 1.1), shear=10, image_shape=flat)
        )
    if "mixup" in chosen:
        from lightning_recipes.augmentation import MixUp

        callbacks.append(MixUp(alpha=0.4, stop_at_epoch=max(1, max_epochs - 2)))
    if "cutmix" in chosen:
        from lightning_recipes.augmentation import CutMix

        callbacks.append(CutMix(alpha=1.0, image_shape=flat))
    if "label-smoothing" in chosen:
        from lightning_recipes.augmentation import LabelSmoothing

        callbacks.append(LabelSmoothing(0.1))
    # Digits are in [0, 1]; MNIST-1D signals are standardised: radii in standard deviations.
    clip = None if signals else (0.0, 1.0)
    if "adversarial" in chosen:  # after augmentation: it attacks what the model sees
        from lightning_recipes.robustness import AdversarialTraining

        eps = 0.05 if signals else 0.1
        callbacks.append(AdversarialTraining(eps=eps, method="fgsm", ratio=0.5, clip=clip))
    if "robustness" in chosen:  # at the last validation and at test
        from lightning_recipes.robustness import RobustnessEvaluation

        epsilons = (0.02, 0.05, 0.1) if signals else (0.05, 0.1, 0.2)
        callbacks.append(
            RobustnessEvaluation(epsilons=epsilons, clip=clip, every_n_epochs=max_epochs)
        )
    if "weight-average" in chosen:  # EMA suits any schedule (SWA wants a flat or cyclic one)
        from lightning_recipes.ensembles import WeightAverage

        # The decay follows the run's length (a fixed 0.999 would ruin a short demo).
        callbacks.append(WeightAverage("ema", start_epoch=max_epochs // 2))
    if "snapshot-ensemble" in chosen:
        from lightning_recipes.ensembles import SnapshotEnsemble

        callbacks.append(SnapshotEnsemble(cycle_epochs=snapshot_cycle(max_epochs)))
    if "attribution" in chosen:
        from lightning_recipes.attribution import Attribution

        names = [f"t{i}" for i in range(MNIST1D_SHAPE[-1])] if signals else None
        callbacks.append(Attribution(at_fit_end=False, feature_names=names))
    return callbacks


def snapshot_cycle(max_epochs: int) -> int:
    """Epochs per learning-rate cycle of ``snapshot-ensemble``: three cycles per run."""
    return max(max_epochs // 3, 1)


def _test_snapshot_ensemble(
    trainer: Trainer, classifier: Classifier, data: BundledDataModule, limit: int | float
) -> dict[str, float]:
    """Test accuracy and NLL of the snapshots' averaged probabilities (empty if none)."""
    from lightning_recipes.ensembles import SnapshotEnsemble

    for callback in trainer_callbacks(trainer):
        if isinstance(callback, SnapshotEnsemble) and callback.snapshots:
            ensemble = callback.ensemble(classifier)
            tested = Trainer(
                accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                enable_model_summary=False, limit_test_batches=limit,
            ).test(ensemble, datamodule=data, verbose=False)  # fmt: skip
            return {f"snapshot_ensemble_{k}": float(v) for k, v in tested[0].items()}
    return {}


def run_demo(
    *,
    name: str | None = None,
    model: Literal["mlp", "cnn"] = "mlp",
    data: DemoData = "digits",
    max_epochs: int = 15,
    batch_size: int = 64,
    lr: float = 3e-3,
    imbalance: dict[int, float] | None = None,
    seed: int = 0,
    out_dir: str | Path = "runs",
    progress: bool = True,
    limit_batches: int | float = 1.0,
    recipes: Sequence[str] = (),
) -> DemoResult:
    """Train a `Classifier` on the bundled digits or MNIST-1D, test it, write the run report.

    Every run gets its own folder, ``<out_dir>/<name>/version_<n>`` (Lightning's
    convention: one past the highest version there, so a rerun never overwrites or mixes
    with an earlier run), holding ``report.md``, ``metrics.json``, ``curves.png``,
    ``confusion.png``, the logger's files and the checkpoint under ``logs/``. The folder
    is `DemoResult.run_dir` (the command prints it).

    Args:
        name: Run name; defaults to ``<data>-<model>``.
        model: ``"mlp"`` (flat features) or ``"cnn"``: on the digits `SmallCNN` on 1x8x8
            images, on MNIST-1D the paper's `Mnist1dCNN` (5,210 parameters with the head).
        data: ``"digits"`` (scikit-learn's 8x8 digits: 1,797 images, bundled) or
            ``"mnist1d"`` (`Mnist1dDataModule`: the paper's 4,000 training signals, 10 % of
            them for validation, and 1,000 test signals of length 40, generated by the
            ``mnist1d`` package, extra ``data``; a harder task on which the recipes have room
            to act). MNIST-1D batches are flat, ``(N, 40)``: the image recipes see a signal
            as a 1 x 40 image (augmentation shifts and stretches it along time, CutMix
            pastes a segment), the attacks use radii 0.02/0.05/0.1 (training: 0.05) in
            standard deviations with no clipping, and attribution ranks the time steps
            ``t0`` .. ``t39``.
        max_epochs: Training epochs.
        batch_size: Batch size.
        lr: Learning rate (AdamW, one-cycle schedule).
        imbalance: ``{class_id: fraction}`` kept of those classes in the training split.
        seed: Seed of the split, the initialisation and the shuffle.
        out_dir: Folder holding the runs (``<out_dir>/<name>/version_<n>``).
        progress: Show Lightning's progress bar.
        limit_batches: Batches per epoch for every loop (int) or a fraction; for quick tests.
        recipes: Recipes to add, from `DEMO_RECIPES`: ``"class-weighting"``,
            ``"find-lr"`` (the LR range test sets the one-cycle peak), ``"early-stopping"``
            (on the validation macro F1, which does not hide a neglected class; patience 5,
            best weights restored), ``"freeze"`` (the backbone is first pretrained for
            `PRETRAIN_EPOCHS` on the training split under a separate head, with the class
            weights when ``class-weighting`` is chosen too, then unfrozen one group every
            ``max_epochs // 7`` epochs from the top), ``"attribution"``, ``"weight-penalty"``
            (L2 1e-4 on Linear/Conv weights), ``"weight-init"`` (Kaiming normal at fit
            start), ``"activations"`` (the activation monitor), ``"mixup"``, ``"cutmix"``,
            ``"label-smoothing"``, ``"image-augmentation"`` (rotation, scale, shear; no flip),
            ``"adversarial"`` (fast FGSM, eps 0.1, on half of each batch),
            ``"robustness"`` (accuracy under PGD at eps 0.05/0.1/0.2, last validation and
            test), ``"weight-average"`` (EMA, decay 0.99, from half-way),
            ``"snapshot-ensemble"`` (cosine restarts, three cycles, one snapshot each; the
            ensemble's test accuracy and NLL join the test metrics).

    Returns:
        The run's folder, measured figures and files.
    """
    if model not in ("mlp", "cnn"):
        raise choice_error("model", model, ("mlp", "cnn"))
    if data not in DEMO_DATA:
        raise choice_error("data", data, DEMO_DATA)
    if max_epochs < 1:
        raise config_error("max_epochs", max_epochs, "Train for at least one epoch.")
    unknown = [r for r in recipes if r not in DEMO_RECIPES]
    if unknown:
        raise choice_error("recipes", unknown[0], DEMO_RECIPES)
    started = time.perf_counter()
    run_name = name or f"{data}-{model}"
    run_dir = new_version_dir(Path(out_dir) / run_name)
    seed_everything(seed, verbose=False)
    layout: Literal["flat", "image"] = "flat" if model == "mlp" or data == "mnist1d" else "image"
    datamodule: BundledDataModule
    backbone: torch.nn.Module
    if data == "mnist1d":
        datamodule = Mnist1dDataModule(batch_size=batch_size, imbalance=imbalance, seed=seed)
        backbone = MLP(40, hidden=(128, 64), dropout=0.1) if model == "mlp" else Mnist1dCNN()
    else:
        datamodule = DigitsDataModule(
            batch_size=batch_size, layout=layout, imbalance=imbalance, seed=seed
        )
        backbone = (
            MLP(64, hidden=(128, 64), dropout=0.1) if model == "mlp" else SmallCNN(dropout=0.1)
        )
    if "freeze" in recipes:
        _pretrain(backbone, datamodule, PRETRAIN_EPOCHS, progress, "class-weighting" in recipes)
    snapshots = "snapshot-ensemble" in recipes
    classifier = Classifier(
        backbone,
        num_classes=10,
        lr=lr,
        scheduler="cosine_restarts" if snapshots else "onecycle",
        scheduler_options={"cycle_epochs": snapshot_cycle(max_epochs)} if snapshots else None,
    )
    history = MetricHistory()
    trainer = Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        default_root_dir=run_dir,
        logger=_logger(run_dir),
        callbacks=[history, *_recipe_callbacks(recipes, max_epochs, layout, data)],
        enable_progress_bar=progress,
        enable_model_summary=progress,
        log_every_n_steps=5,
        limit_train_batches=limit_batches,
        limit_val_batches=limit_batches,
        limit_test_batches=limit_batches,
        limit_predict_batches=limit_batches,
    )
    trainer.fit(classifier, datamodule=datamodule)
    tested = trainer.test(classifier, datamodule=datamodule, verbose=False)
    ensemble_metrics = _test_snapshot_ensemble(trainer, classifier, datamodule, limit_batches)
    predictions = trainer.predict(classifier, datamodule=datamodule)
    assert predictions is not None
    assert datamodule.test_dataset is not None
    predicted = torch.cat([p for p in predictions if isinstance(p, torch.Tensor)]).argmax(dim=-1)
    targets = datamodule.test_dataset.targets[: predicted.shape[0]]
    confusion = multiclass_confusion_matrix(predicted, targets, num_classes=10)
    config: dict[str, Any] = {
        "data": data,
        "model": model,
        "max_epochs": max_epochs,
        "batch_size": batch_size,
        "lr (given)": lr,
        "lr (used, schedule peak)": float(getattr(classifier, "lr", lr)),
        "optimizer": "adamw + "
        + (
            f"cosine restarts every {snapshot_cycle(max_epochs)} epochs"
            if snapshots
            else "onecycle"
        ),
        "imbalance": imbalance or "none",
        "seed": seed,
        "recipes": ", ".join(recipes) or "none",
        "pretraining": f"{PRETRAIN_EPOCHS} epochs on the training split, separate head"
        if "freeze" in recipes
        else "none",
        "train/val/test samples": f"{len(datamodule.train_dataset or [])}/"
        f"{len(datamodule.val_dataset or [])}/{len(datamodule.test_dataset)}",
        "parameters": sum(p.numel() for p in classifier.parameters()),
    }
    report = RunReport(
        title=f"{'MNIST-1D' if data == 'mnist1d' else 'Digits'} demo: {run_name}",
        history=history.records,
        test_metrics={**{k: float(v) for k, v in tested[0].items()}, **ensemble_metrics},
        confusion=confusion,
        config=config,
        recipes=run_summaries(trainer_callbacks(trainer)),
    )
    files = write_report(report, run_dir)
    return DemoResult(run_dir, report, files, time.perf_counter() - started)
