"""Attribution: explain a fixed sample of inputs during and after training, in every stage."""

import csv
import importlib.util
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.optional import require
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.rng import preserved_rng
from lightning_recipes._core.validate import flag as check_flag
from lightning_recipes._core.validate import is_int, is_real, positive_int
from lightning_recipes.attribution.checks import check_baselines
from lightning_recipes.attribution.explain import (
    METHODS,
    Explanation,
    check_arguments,
    explain,
    preflight,
)
from lightning_recipes.attribution.explanation import feature_importance
from lightning_recipes.attribution.figures import heatmaps_figure, importance_figure
from lightning_recipes.attribution.inputs import _check_inputs, first_inputs, training_background
from lightning_recipes.errors import choice_error, config_error

__all__ = ["Attribution"]

BaselineKind = Literal["zeros", "mean", "train_sample"]


class Attribution(Recipe):
    """Explain a fixed sample of inputs with captum, during training and after it.

    At the first use the callback takes ``num_samples`` inputs (``inputs=`` if given,
    else the first validation batches, else the test batches) and keeps them, so every
    explanation is of the same inputs and comparable across epochs. It runs `explain`
    every ``every_n_epochs`` training epochs, at the end of fit and/or at the end of
    testing; `explain` switches the module to eval mode (restored afterwards) and works
    under the inference mode of ``trainer.validate/test``. Under DDP only global rank
    zero explains and writes, the other ranks wait at a barrier; sharded strategies are
    refused (rank zero does not hold the whole model).

    Outputs, under ``<run dir>/attribution/<when>/``: ``attributions.pt`` (inputs,
    attributions, targets, completeness gaps); for tabular inputs ``importance.csv``
    (mean |attribution| per feature, overall and per class) and the bar chart
    ``attribution/importance``; for image inputs the heatmaps ``attribution/heatmaps``
    (figures as PNG and to TensorBoard). The run dir is the logger's log dir, else the
    Trainer's ``default_root_dir``; with neither no file is written (the results stay in
    ``results``), never into the current folder. The mean completeness gap (for methods that have
    one) is logged as ``attribution/completeness_gap`` and warned about above
    ``max_completeness_gap``. Needs the ``attribution`` extra (captum).

    Args:
        method: A name of `METHODS` or a captum attribution class.
        num_samples: Inputs to explain.
        inputs: The inputs to explain (a tensor, or a ``(inputs, labels)`` pair).
        baselines: ``"zeros"``, ``"mean"`` (of the explained inputs), ``"train_sample"``
            (up to 16 training inputs: the SHAP background distribution) or a tensor.
        every_n_epochs: Explain every n training epochs (None: not during training).
        at_fit_end: Explain when fit ends.
        at_test_end: Explain when testing ends.
        at_validate_end: Explain when a ``trainer.validate()`` call ends (not the
            validation runs inside fit).
        feature_names: Names of tabular features, for the table and the chart.
        max_completeness_gap: Warn when the mean gap exceeds it.
        method_kwargs: Extra arguments for the captum method (e.g. ``n_steps``).
        plot: Draw the figures (needs matplotlib; each PNG costs about 0.2 s on a CPU).
        output: For a model returning a dict, tuple or list: the key or index of the
            ``(N, classes)`` scores to explain; None for a model returning a tensor.

    Arguments are checked at construction; what needs the data and the model (the sample,
    feature names and baselines against it, and one short forward pass of two inputs that
    checks the model's output) when fit, validate or test starts, before the first batch.
    Every explanation runs inside `preserved_rng`: the callback never changes training.

    Attributes:
        results: The latest `Explanation` of each phase (``"epoch3"``, ``"fit_end"``,
            ``"validate_end"``, ``"test_end"``), on rank zero.

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_recipes.data import DigitsDataModule
        >>> from lightning_recipes.modules import MLP, Classifier
        >>> import tempfile
        >>> attribution = Attribution(num_samples=8)
        >>> trainer = Trainer(max_epochs=1, limit_train_batches=2, callbacks=[attribution],
        ...                   logger=False, enable_checkpointing=False,
        ...                   default_root_dir=tempfile.mkdtemp(),  # outputs go here
        ...                   enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(Classifier(MLP(64, [16]), num_classes=10), DigitsDataModule())
        >>> attribution.results["fit_end"].attributions.shape
        torch.Size([8, 64])
    """

    identity = (
        "method=_method_name",
        "num_samples",
        "baselines=_baselines_key",
        "every_n_epochs",
        "output",
    )
    refused_strategies = helpers.SHARDED
    refusal_reason = (
        "rank zero alone would run a forward pass of a sharded model and hang. "
        "Explain a single-device copy of the trained model with explain() instead."
    )

    def __init__(
        self,
        method: str | type = "gradient_shap",
        num_samples: int = 32,
        inputs: Tensor | tuple[Tensor, Tensor] | None = None,
        baselines: BaselineKind | Tensor = "zeros",
        every_n_epochs: int | None = None,
        at_fit_end: bool = True,
        at_test_end: bool = True,
        at_validate_end: bool = True,
        feature_names: list[str] | None = None,
        max_completeness_gap: float = 0.1,
        method_kwargs: dict[str, Any] | None = None,
        plot: bool = True,
        output: int | str | None = None,
    ) -> None:
        super().__init__()
        require("captum.attr", extra="attribution", feature="Attribution")
        if isinstance(method, str) and method not in METHODS:
            raise choice_error("method", method, list(METHODS))
        if not isinstance(method, (str, type)):
            raise config_error("method", method, f"Pass a name of METHODS: {', '.join(METHODS)}.")
        positive_int("num_samples", num_samples, "Pass a positive number of inputs.")
        sample = _check_inputs(inputs)
        if isinstance(baselines, str):
            if baselines not in ("zeros", "mean", "train_sample"):
                raise choice_error("baselines", baselines, ("zeros", "mean", "train_sample"))
        elif not isinstance(baselines, Tensor):
            raise config_error(
                "baselines",
                baselines,
                "Pass 'zeros', 'mean', 'train_sample' or a tensor of inputs (B, ...).",
            )
        if every_n_epochs is not None:
            positive_int("every_n_epochs", every_n_epochs, "Pass a positive integer or None.")
        for name, flag in (
            ("at_fit_end", at_fit_end),
            ("at_test_end", at_test_end),
            ("at_validate_end", at_validate_end),
            ("plot", plot),
        ):
            check_flag(name, flag)
        if feature_names is not None and (
            isinstance(feature_names, str)
            or not isinstance(feature_names, list | tuple)
            or not feature_names
            or not all(isinstance(n, str) for n in feature_names)
            or len(set(feature_names)) != len(feature_names)
        ):
            raise config_error(
                "feature_names",
                feature_names,
                "Pass a list of distinct names, one per feature of 2-D (tabular) inputs.",
            )
        if not is_real(max_completeness_gap) or not max_completeness_gap > 0:
            raise config_error(
                "max_completeness_gap", max_completeness_gap, "Pass a positive bound."
            )
        if method_kwargs is not None and not isinstance(method_kwargs, dict):
            raise config_error(
                "method_kwargs",
                method_kwargs,
                "Pass a dict of keyword arguments, e.g. {'n_steps': 32}.",
            )
        check_arguments(method, dict(method_kwargs or {}), num_samples, argument="method_kwargs")
        if output is not None and not (is_int(output) or (isinstance(output, str) and output)):
            raise config_error(
                "output", output, "Pass a key (non-empty str) or an index (int), or None."
            )
        self.method = method
        self.num_samples = num_samples
        self.inputs = sample
        self.baselines = baselines
        self.every_n_epochs = every_n_epochs
        self.at_fit_end = at_fit_end
        self.at_test_end = at_test_end
        self.at_validate_end = at_validate_end
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.max_completeness_gap = max_completeness_gap
        self.method_kwargs = dict(method_kwargs or {})
        self.plot = plot
        self.output = output
        if sample is not None:  # what can be checked without the model, now
            self._check_against(sample[: self.num_samples])
        self.results: dict[str, Explanation] = {}
        self.figure_paths: dict[str, Path] = {}  # caption -> PNG (rank zero)
        self._sample: Tensor | None = None
        self._background: Tensor | None = None
        self._checked = False

    def _check_against(self, sample: Tensor) -> None:
        """Checks of feature_names and baselines against the inputs (no model needed)."""
        if self.feature_names is not None:
            if sample.ndim != 2:
                raise config_error(
                    "feature_names",
                    self.feature_names,
                    f"Names are for 2-D (tabular) inputs; these are {tuple(sample.shape)}.",
                )
            if len(self.feature_names) != sample.shape[1]:
                raise config_error(
                    "feature_names",
                    self.feature_names,
                    f"Pass one name per feature: the inputs have {sample.shape[1]}, not "
                    f"{len(self.feature_names)}.",
                )
        if isinstance(self.baselines, Tensor):
            check_baselines(sample, self._method_name, self.baselines)

    @property
    def _method_name(self) -> str:
        return self.method if isinstance(self.method, str) else self.method.__name__

    @property
    def _baselines_key(self) -> str:
        return self.baselines if isinstance(self.baselines, str) else "tensor"

    def _prepare(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Take the inputs and check everything on them, before the first batch runs.

        One short forward pass (two inputs) checks the model's output (and ``output``);
        every rank checks, so that all of them fail together. Random states untouched.
        """
        if self._checked:
            return
        with preserved_rng():
            sample = self._sample_inputs(trainer)
            self._check_against(sample)
            preflight(
                pl_module,
                sample,
                self.method,
                self._baselines(trainer, sample),
                output=self.output,
                **self.method_kwargs,
            )
        self._checked = True

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.check_strategy(trainer)

    # ------------------------------------------------------------ when

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # The dataloaders are set up by now (the validation one too, when validation runs)
        # and no training step has run: the last moment to fail cheaply.
        if self.every_n_epochs or self.at_fit_end:
            self._prepare(trainer, pl_module)

    @override
    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.at_validate_end and trainer.state.fn == TrainerFn.VALIDATING:
            self._prepare(trainer, pl_module)

    @override
    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.at_test_end:
            self._prepare(trainer, pl_module)

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        every = self.every_n_epochs
        if every and (trainer.current_epoch + 1) % every == 0:
            self._run(trainer, pl_module, f"epoch{trainer.current_epoch}")

    @override
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.at_fit_end:
            self._run(trainer, pl_module, "fit_end")

    @override
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.at_validate_end and trainer.state.fn == TrainerFn.VALIDATING:
            self._run(trainer, pl_module, "validate_end")

    @override
    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.at_test_end:
            self._run(trainer, pl_module, "test_end")

    # ------------------------------------------------------------ what

    def _sample_inputs(self, trainer: Trainer) -> Tensor:
        if self._sample is None:
            sample = self.inputs
            if sample is None:
                sample = first_inputs(trainer.val_dataloaders, self.num_samples)
            if sample is None:
                sample = first_inputs(trainer.test_dataloaders, self.num_samples)
            if sample is None:
                raise config_error(
                    "inputs",
                    None,
                    "No validation or test dataloader to take inputs from: pass inputs=.",
                )
            self._sample = sample[: self.num_samples].detach().cpu().clone()
        return self._sample

    def _baselines(self, trainer: Trainer, sample: Tensor) -> Tensor | None:
        """The baselines to pass to `explain`, which alone shapes them for the method."""
        if isinstance(self.baselines, Tensor):
            return self.baselines
        if self.baselines == "mean":
            return sample.mean(dim=0, keepdim=True)
        if self.baselines == "train_sample":
            if self._background is None:
                self._background = training_background(trainer.train_dataloader, len(sample))
            if self._background is not None:
                return self._background
        return None  # zeros: explain()'s default for the method

    def _run(self, trainer: Trainer, pl_module: LightningModule, when: str) -> None:
        if trainer.global_rank == 0:
            # Attribution must never change training: gradient_shap, lime, kernel_shap and
            # shapley_value_sampling draw random numbers.
            with preserved_rng():
                sample = self._sample_inputs(trainer)
                result = explain(
                    pl_module,
                    sample,
                    self.method,
                    baselines=self._baselines(trainer, sample),
                    output=self.output,
                    **self.method_kwargs,
                )
            self.results[when] = result
            self._write(trainer, result, sample, when)
        # The other ranks wait here, so nobody races ahead into a collective.
        trainer.strategy.barrier()

    # ------------------------------------------------------------ outputs

    def _write(self, trainer: Trainer, result: Explanation, sample: Tensor, when: str) -> None:
        root = helpers.run_dir(trainer)  # None: no logger, no default_root_dir, no files
        folder = None if root is None else root / "attribution" / when
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "inputs": sample,
                    "attributions": result.attributions,
                    "target": result.target,
                    "completeness_gap": result.completeness_gap,
                    "method": result.method,
                },
                folder / "attributions.pt",
            )
        if result.completeness_gap is not None:
            gap = float(result.completeness_gap.mean())
            for logger in trainer.loggers:
                logger.log_metrics({"attribution/completeness_gap": gap}, step=trainer.global_step)
            if not gap <= self.max_completeness_gap:
                helpers.rank_zero_warn(
                    f"Attribution ({result.method}, {when}): mean completeness gap {gap:.3g} "
                    f"exceeds {self.max_completeness_gap}: the attributions do not add up to "
                    "the output change. Raise n_steps / n_samples, or check the baselines."
                )
        plots = self.plot and _can_import("matplotlib")
        if sample.ndim == 2:
            if folder is not None:
                self._write_table(folder, result)
            if plots:
                figure = importance_figure(result, self._names(sample.shape[1]))
                path = helpers.log_figure(trainer, figure, f"attribution/{when}/importance")
                self._remember(f"feature importance ({when})", path)
        elif sample.ndim >= 3 and plots:
            path = helpers.log_figure(
                trainer, heatmaps_figure(sample, result), f"attribution/{when}/heatmaps"
            )
            self._remember(f"attribution heatmaps ({when})", path)

    def _remember(self, caption: str, path: Path | None) -> None:
        if path is not None:
            self.figure_paths[caption] = path

    @override
    def run_summary(self) -> RecipeSummary:
        """What was explained, when, how well it adds up, and the figures."""
        explained = {}
        for when, result in self.results.items():
            gap = result.completeness_gap
            explained[when] = {
                "inputs": int(result.attributions.shape[0]),
                "mean completeness gap": None if gap is None else round(float(gap.mean()), 4),
            }
        return RecipeSummary(
            "Attribution",
            facts={"method": str(self.method), "explained": explained},
            figures=dict(self.figure_paths),
        )

    def _names(self, count: int) -> list[str]:
        names = self.feature_names
        return list(names) if names and len(names) == count else [f"x{i}" for i in range(count)]

    def _write_table(self, folder: Path, result: Explanation) -> None:
        overall, by_class = feature_importance(result)
        names = self._names(len(overall))
        classes = sorted(by_class)
        with (folder / "importance.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["feature", "all", *(f"class_{c}" for c in classes)])
            for i, name in enumerate(names):
                writer.writerow(
                    [name, f"{overall[i]:.6g}", *(f"{by_class[c][i]:.6g}" for c in classes)]
                )


def _can_import(module: str) -> bool:
    """Whether a module can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None
