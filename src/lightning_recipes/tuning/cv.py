"""K-fold cross-validation of a LightningCLI config, alone or as the objective of a search.

`cross_validate` trains one fresh model per fold: for fold ``i`` it builds the whole run
(model, datamodule, Trainer, callbacks) anew from the config with
``data.init_args.num_folds=K`` and ``data.init_args.fold=i``, so nothing (weights,
optimizer state, callback state, fitted preprocessing, class weights) carries over from
one fold to the next. The folds themselves are cut by the datamodule (`fold_split`:
scikit-learn's ``StratifiedKFold``, ``KFold`` or ``StratifiedGroupKFold``), which also fits
any preprocessing (``scaler``) on the training folds only.

`cv_objective` is the same loop as an Optuna objective: it reports the running mean over
the folds done so far to the trial after each fold and stops the trial between folds when
the pruner says so.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from lightning.pytorch import Callback

from lightning_recipes._core.modes import ModeChoice, resolve_mode
from lightning_recipes._core.optional import require
from lightning_recipes.data.splits import FoldKind
from lightning_recipes.errors import (
    config_error,
)

if TYPE_CHECKING:
    import optuna
from lightning_recipes.tuning.cv_folds import (
    _run_folds,
)
from lightning_recipes.tuning.cv_results import CVResult, FoldResult, _std

__all__ = ["CVResult", "FoldResult", "cross_validate", "cv_objective"]

Use = Literal["best", "last"]
CallbacksFactory = Callable[[int], Sequence[Callback]]
ReporterFactory = Callable[[int], Callback | None]


def cross_validate(
    config: Mapping[str, Any] | str | Path,
    k: int = 5,
    *,
    kind: FoldKind = "stratified",
    monitor: str = "val_loss",
    mode: ModeChoice = "auto",
    use: Use = "best",
    seed: int | None = None,
    overrides: Sequence[str] = (),
    callbacks_factory: CallbacksFactory | None = None,
    out_dir: str | Path | None = None,
) -> CVResult:
    """K-fold cross-validate a LightningCLI config: one fresh run per fold.

    For each fold ``i`` the model, datamodule, Trainer and callbacks are built anew from
    ``config`` (as ``lightning-recipes fit -c`` would) with ``data.init_args.num_folds=k``,
    ``fold=i`` and ``fold_kind=kind``, then trained. The datamodule cuts the folds
    (stratified by default, seeded by its ``seed``) and fits any preprocessing on the
    training folds only; callbacks that read the training data (e.g. `ClassWeighting`)
    see the fold's training labels. Each fold is scored by ``monitor`` at its best epoch
    (``use="best"``, by ``mode``) or its last (``use="last"``); every other scalar metric
    is reported at that same epoch.

    Args:
        config: A LightningCLI YAML file or the same as a dict (sections ``trainer``,
            ``model``, ``data``; the datamodule needs ``num_folds``/``fold`` arguments).
        k: The number of folds, >= 2.
        kind: ``"stratified"``, ``"plain"`` or ``"grouped"`` (the datamodule's groups).
        monitor: The metric that scores a fold.
        mode: ``"min"`` or ``"max"``: which value of ``monitor`` is best; ``"auto"`` reads
            it from the name, as `EarlyStopping` does (loss, error -> min; accuracy, F1,
            AUROC -> max) and refuses a name it cannot place.
        use: ``"best"`` scores a fold by its best epoch, ``"last"`` by its last.
        seed: Sets ``data.init_args.seed`` (folds, split, shuffle) and ``seed_everything``
            for every fold; None keeps the config's.
        overrides: ``--section.key=value`` strings, as on the command line (e.g.
            ``["--trainer.max_epochs=5"]``).
        callbacks_factory: ``fold -> callbacks`` added to that fold's Trainer (fresh
            instances per fold), for callbacks built in Python.
        out_dir: Each fold's ``trainer.default_root_dir`` becomes ``out_dir/fold_<i>``
            (holding the fold's ``config.yaml``). None keeps the config's
            ``default_root_dir`` if it sets one; otherwise each fold runs in a temporary
            folder deleted at the end, so nothing (logs, checkpoints, ``config.yaml``) is
            kept and nothing is written into the current folder.

    Returns:
        The `CVResult`: per fold values and metrics, ``mean``/``std``, ``table()``.

    Raises:
        RecipeConfigError: For bad arguments, a datamodule without fold support, or a
            multi-device Trainer — before any fold trains.
        MissingMetricError: If ``monitor`` is not logged during validation.

    Examples:
        >>> result = cross_validate(
        ...     "examples/configs/digits.yaml", k=3, out_dir=getfixture("tmp_path"),
        ...     overrides=["--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
        ...                "--trainer.enable_progress_bar=false", "--trainer.logger=false",
        ...                "--trainer.enable_model_summary=false"],
        ... )  # doctest: +SKIP
    """
    folds = [
        result
        for result, _ in _run_folds(
            config,
            k,
            kind=kind,
            monitor=monitor,
            mode=mode,
            use=use,
            seed=seed,
            overrides=overrides,
            callbacks_factory=callbacks_factory,
            out_dir=out_dir,
        )
    ]
    return CVResult(monitor=monitor, mode=resolve_mode(monitor, mode), kind=kind, folds=folds)


def cv_objective(
    trial: "optuna.trial.BaseTrial",
    config: Mapping[str, Any] | str | Path,
    k: int = 5,
    monitor: str = "val_loss",
    mode: ModeChoice = "auto",
    reporter_factory: ReporterFactory | None = None,
    *,
    kind: FoldKind = "stratified",
    use: Use = "best",
    seed: int | None = None,
    overrides: Sequence[str] = (),
    out_dir: str | Path | None = None,
) -> float:
    """Cross-validate ``config`` as an Optuna objective: the mean of ``monitor`` over folds.

    ``config`` already holds the trial's parameters. After fold ``i`` the running mean
    over folds ``0..i`` is reported to the trial at ``step=i``, and if the trial's pruner
    then says to prune, `optuna.TrialPruned` is raised before the next fold trains (so a
    hopeless configuration costs one or two folds, not ``k``). The fold values, their
    mean and std are stored as the trial's user attributes ``cv_values``, ``cv_mean``,
    ``cv_std``.

    ``reporter_factory(fold)`` may return a callback added to that fold's Trainer, e.g. a
    per-epoch pruning callback; if it ends with a true ``pruned`` attribute the trial is
    pruned. It must not report to the trial at the steps ``0..k-1`` used here.

    Args:
        trial: The Optuna trial.
        config: A LightningCLI YAML file or dict, with the trial's parameters applied.
        k: The number of folds, >= 2.
        monitor: The metric that scores a fold.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (see `cross_validate`).
        reporter_factory: ``fold -> callback or None``, see above.
        kind: ``"stratified"``, ``"plain"`` or ``"grouped"``.
        use: ``"best"`` or ``"last"`` epoch of each fold, see `cross_validate`.
        seed: See `cross_validate`.
        overrides: See `cross_validate`.
        out_dir: See `cross_validate`.

    Returns:
        The mean of the fold values (the value to tell the study).

    Raises:
        optuna.TrialPruned: When the pruner stops the trial between folds, or a
            reporter pruned a fold.
    """
    optuna = require("optuna", extra="tune", feature="cv_objective")
    if reporter_factory is not None and not callable(reporter_factory):
        raise config_error(
            "reporter_factory", reporter_factory, "Pass a function fold -> callback or None."
        )

    def factory(fold: int) -> list[Callback]:
        reporter = reporter_factory(fold) if reporter_factory is not None else None
        return [] if reporter is None else [reporter]

    values: list[float] = []
    for result, extra in _run_folds(
        config,
        k,
        kind=kind,
        monitor=monitor,
        mode=mode,
        use=use,
        seed=seed,
        overrides=overrides,
        callbacks_factory=factory,
        out_dir=out_dir,
    ):
        values.append(result.value)
        running = float(np.mean(values))
        trial.set_user_attr("cv_values", list(values))
        if any(getattr(cb, "pruned", False) for cb in extra):
            raise optuna.TrialPruned(f"fold {result.fold} was pruned by its reporter")
        if math.isfinite(running):
            trial.report(running, step=result.fold)
        if result.fold < k - 1 and trial.should_prune():
            raise optuna.TrialPruned(
                f"pruned after fold {result.fold}: running mean {monitor}={running:.4g}"
            )
    mean = float(np.mean(values))
    trial.set_user_attr("cv_mean", mean)
    trial.set_user_attr("cv_std", _std(values))
    return mean
