"""Running the folds of a cross-validation: each fold's config, fit and selected value."""

import contextlib
import copy
import importlib
import inspect
import io
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_recipes._core.modes import Mode, ModeChoice, resolve_mode
from lightning_recipes._core.trainer import trainer_callbacks
from lightning_recipes.data.splits import FOLD_KINDS, FoldKind
from lightning_recipes.errors import (
    MissingMetricError,
    RecipeConfigError,
    choice_error,
    config_error,
)
from lightning_recipes.tuning.config_parser import ConfigParser

if TYPE_CHECKING:
    pass
from lightning_recipes.tuning.cv_results import FoldResult
from lightning_recipes.tuning.metric_recorder import MetricRecorder, not_logged

__all__: list[str] = []

Use = Literal["best", "last"]
CallbacksFactory = Callable[[int], Sequence[Callback]]
ReporterFactory = Callable[[int], Callback | None]


def _check_args(
    k: Any, kind: Any, monitor: Any, mode: Any, use: Any, seed: Any, overrides: Any
) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise config_error("k", k, "Pass the number of folds, an integer >= 2.")
    if kind not in FOLD_KINDS:
        raise choice_error("kind", kind, FOLD_KINDS)
    if not isinstance(monitor, str) or not monitor:
        raise config_error("monitor", monitor, "Pass the name of a logged metric, e.g. 'val_loss'.")
    resolve_mode(monitor, mode)
    if use not in ("best", "last"):
        raise choice_error("use", use, ("best", "last"))
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise config_error("seed", seed, "Pass an integer seed, or None to keep the config's.")
    if isinstance(overrides, str) or not isinstance(overrides, Sequence):
        raise config_error(
            "overrides",
            overrides,
            "Pass a list of '--section.key=value' strings, e.g. ['--trainer.max_epochs=5'].",
        )
    for item in overrides:
        if not isinstance(item, str) or not item.startswith("--"):
            raise config_error(
                "overrides", item, "Each override is a '--section.key=value' string."
            )


def _load(config: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file():
            raise config_error("config", str(config), "Pass a LightningCLI YAML file or a dict.")
        loaded = yaml.safe_load(path.read_text())
    elif isinstance(config, Mapping):
        loaded = copy.deepcopy(dict(config))
    else:
        raise config_error(
            "config", type(config).__name__, "Pass a LightningCLI YAML file or a dict."
        )
    if not isinstance(loaded, dict):
        raise config_error("config", type(loaded).__name__, "The config must be a YAML mapping.")
    data = loaded.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("class_path"), str):
        raise config_error(
            "data",
            data,
            "Cross-validation needs a 'data' section with a class_path, e.g. "
            "lightning_recipes.data.DigitsDataModule.",
        )
    return loaded


def _check_fold_support(config: Mapping[str, Any], kind: FoldKind) -> None:
    """Refuse a datamodule class without ``num_folds``/``fold`` before any fold runs."""
    class_path = config["data"]["class_path"]
    module_name, _, name = class_path.rpartition(".")
    if not module_name:
        return  # a short name resolved by jsonargparse: checked after instantiation
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise config_error(
            "data.class_path", class_path, "Pass the import path of a LightningDataModule."
        ) from err
    parameters = inspect.signature(cls).parameters
    if "num_folds" not in parameters or "fold" not in parameters:
        raise _no_fold_support(class_path)
    if kind == "grouped" and "groups" not in parameters:
        raise config_error(
            "kind",
            kind,
            f"{class_path} has no groups argument to keep groups in one fold: use "
            '"stratified" or "plain", or a datamodule with groups (ArrayDataModule).',
        )


def _no_fold_support(class_path: str) -> Exception:
    return config_error(
        "data.class_path",
        class_path,
        "Cross-validation needs a datamodule with num_folds and fold arguments that cuts "
        "its own folds (lightning_recipes.data.DigitsDataModule or ArrayDataModule, or "
        "your own with the same arguments).",
    )


def _fold_config(
    config: Mapping[str, Any], k: int, fold: int, kind: FoldKind, seed: int | None
) -> dict[str, Any]:
    fold_config = copy.deepcopy(dict(config))
    data = fold_config["data"]
    init_args = dict(data.get("init_args") or {})
    init_args.update(num_folds=k, fold=fold, fold_kind=kind)
    if seed is not None:
        init_args["seed"] = seed
        fold_config["seed_everything"] = seed
    data["init_args"] = init_args
    return fold_config


def _insert(trainer: Trainer, callbacks: Sequence[Callback]) -> None:
    """Add callbacks before the checkpoint callbacks (which Lightning runs last)."""
    existing = trainer_callbacks(trainer)
    at = next((i for i, c in enumerate(existing) if isinstance(c, ModelCheckpoint)), len(existing))
    # Trainer.callbacks is a public list set in __init__ without a class annotation.
    trainer.callbacks = existing[:at] + list(callbacks) + existing[at:]  # type: ignore[attr-defined]


def _build(
    parser: ConfigParser,
    args: list[str],
    fold: int,
    *,
    save_config: bool,
    dumped: Mapping[str, Any] | None,
) -> Any:
    """Build a fold's run with the CLI, turning its exits and errors into ours.

    Every fold reuses ``parser`` (LightningCLI's parser is built once per
    cross-validation), and ``dumped``, when given, stands for LightningCLI's own dump of
    the parsed config (see `_next_dump`).
    """
    captured = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(captured):
            warnings.filterwarnings("ignore", message=".*args parameter is intended to run")
            return parser.cli_args(args, save_config=save_config, dumped=dumped)
    except SystemExit as err:  # jsonargparse exits on a bad key or value
        lines = [line for line in captured.getvalue().splitlines() if line.strip()]
        starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
        reason = "\n".join(lines[starts[-1] if starts else -1 :][:15])
        raise config_error(
            "config",
            f"<fold {fold}>",
            f"LightningCLI refused the config or the overrides: {reason}",
        ) from err
    except RecipeConfigError:
        raise
    except ValueError as err:  # a class's __init__ refused its arguments
        raise config_error(
            "config", f"<fold {fold}>", f"LightningCLI could not build the run: {err}"
        ) from err
    finally:
        sys.stderr.write(captured.getvalue())


def _next_dump(first: Mapping[str, Any] | None, fold: int) -> dict[str, Any] | None:
    """LightningCLI's dump of the first fold's config, made the dump of fold ``fold``.

    LightningCLI dumps the parsed config to store the model's and the datamodule's
    hyperparameters, which costs about as much as parsing it. The folds' configs differ
    only in ``data.init_args.fold`` (the fold arguments come last, after any override), so
    the first fold's dump with that one value changed is what the dump of fold ``fold``
    would give. None (LightningCLI dumps it itself) when there is no first dump or it does
    not have that shape.
    """
    if not isinstance(first, Mapping):
        return None
    dumped = copy.deepcopy(dict(first))
    init_args = (dumped.get("data") or {}).get("init_args")
    if not isinstance(init_args, dict) or init_args.get("fold") != 0:
        return None
    init_args["fold"] = fold
    return dumped


def _select(recorder: MetricRecorder, monitor: str, mode: Mode, use: Use) -> tuple[int, float]:
    """The index of the selected validation record and its monitored value."""
    if not recorder.records:
        raise MissingMetricError(
            f"cross_validate: no validation ran, so {monitor!r} was never measured. Keep "
            "validation on (limit_val_batches > 0) and the fold's val split non-empty."
        )
    history = [r.get(monitor) for r in recorder.records]
    if any(v is None for v in history):
        raise MissingMetricError(not_logged("cross_validate", monitor, recorder.records))
    values = np.asarray(history, dtype=np.float64)
    if use == "last":
        return len(values) - 1, float(values[-1])
    ranked = np.where(np.isnan(values), np.inf, values if mode == "min" else -values)
    best = int(np.argmin(ranked))  # the first best epoch on ties
    return best, float(values[best])


def _run_folds(
    config: Mapping[str, Any] | str | Path,
    k: int,
    *,
    kind: FoldKind,
    monitor: str,
    mode: ModeChoice,
    use: Use,
    seed: int | None,
    overrides: Sequence[str],
    callbacks_factory: CallbacksFactory | None,
    out_dir: str | Path | None,
) -> Iterator[tuple[FoldResult, list[Callback]]]:
    """Train fold after fold; yield each fold's result and the extra callbacks it ran with."""
    _check_args(k, kind, monitor, mode, use, seed, overrides)
    direction = resolve_mode(monitor, mode)
    if callbacks_factory is not None and not callable(callbacks_factory):
        raise config_error(
            "callbacks_factory", callbacks_factory, "Pass a function fold -> list of callbacks."
        )
    base = _load(config)
    _check_fold_support(base, kind)
    parser = ConfigParser()  # built at the first fold, reused by the others
    first_dump: Any = None  # fold 0's dump of its config (a dict), not its run
    with tempfile.TemporaryDirectory(prefix="lr-cv-") as scratch:
        for fold in range(k):
            fold_config = _fold_config(base, k, fold, kind, seed)
            fold_dir = Path(scratch) / f"fold_{fold}"
            if out_dir is not None:
                fold_dir = Path(out_dir) / f"fold_{fold}"
            trainer_config = dict(fold_config.get("trainer") or {})
            # Files are kept with out_dir or the config's own folder; otherwise the fold
            # runs in the scratch folder (Lightning's default, the current folder, is never
            # written) and LightningCLI's config.yaml, deleted at the end, is not saved.
            keep = out_dir is not None or trainer_config.get("default_root_dir") is not None
            if out_dir is not None or not keep:
                trainer_config["default_root_dir"] = str(fold_dir.resolve())
            fold_config["trainer"] = trainer_config
            fold_dir.mkdir(parents=True, exist_ok=True)
            config_path = fold_dir / "config.yaml"
            config_path.write_text(yaml.safe_dump(fold_config, sort_keys=False))
            # The fold settings come last, so that no override can change which fold runs.
            fold_args = [
                f"--data.init_args.num_folds={k}",
                f"--data.init_args.fold={fold}",
                f"--data.init_args.fold_kind={kind}",
            ]
            cli = _build(
                parser,
                ["-c", str(config_path), *overrides, *fold_args],
                fold,
                save_config=keep,
                dumped=_next_dump(first_dump, fold) if fold else None,
            )
            if fold == 0:
                first_dump = copy.deepcopy(getattr(cli, "config_dump", None))
            datamodule, trainer = cli.datamodule, cli.trainer
            if (
                getattr(datamodule, "num_folds", None) != k
                or getattr(datamodule, "fold", None) != fold
            ):
                raise _no_fold_support(type(datamodule).__qualname__)
            if trainer.world_size > 1:
                raise config_error(
                    "trainer.devices",
                    f"{trainer.num_devices} x {trainer.num_nodes} node(s)",
                    "cross_validate trains the folds one after another in this process: use "
                    "one device per fold (trainer.devices=1), or run each fold as its own "
                    "`lightning-recipes fit` with data.init_args.fold=i.",
                )
            recorder = MetricRecorder(monitor)
            extra = list(callbacks_factory(fold)) if callbacks_factory is not None else []
            _insert(trainer, [*extra, recorder])
            trainer.fit(cli.model, datamodule=datamodule)
            index, value = _select(recorder, monitor, direction, use)
            train_set = getattr(datamodule, "train_dataset", None)
            val_set = getattr(datamodule, "val_dataset", None)
            yield (
                FoldResult(
                    fold=fold,
                    value=value,
                    epoch=recorder.epochs[index],
                    metrics=dict(recorder.records[index]),
                    train_size=None if train_set is None else len(train_set),
                    val_size=None if val_set is None else len(val_set),
                    history=[r[monitor] for r in recorder.records],
                    checkpoint=_kept_checkpoint(trainer) if out_dir is not None else None,
                ),
                extra,
            )


def _kept_checkpoint(trainer: Trainer) -> str | None:
    """The fold's best checkpoint file, else its last, else None."""
    callback = trainer.checkpoint_callback
    if not isinstance(callback, ModelCheckpoint):
        return None
    path = callback.best_model_path or callback.last_model_path
    return str(Path(path).resolve()) if path else None
