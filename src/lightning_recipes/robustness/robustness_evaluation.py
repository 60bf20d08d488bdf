"""RobustnessEvaluation: clean and adversarial accuracy after validation and testing.

The counting is `lightning_recipes.robustness.evaluate.correct_counts` (pure); this
callback decides when it runs, sums the counts over ranks, logs and plots them.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.batch import batch_inputs
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.labels import batch_labels
from lightning_recipes._core.loss import attack_loss
from lightning_recipes._core.optional import new_figure
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.rng import preserved_rng
from lightning_recipes._core.validate import finite_sequence, flag, positive_int
from lightning_recipes.errors import config_error
from lightning_recipes.robustness.attacks import Norm
from lightning_recipes.robustness.checks import check_clip, check_keys
from lightning_recipes.robustness.evaluate import AttackName, correct_counts

__all__ = ["RobustnessEvaluation"]


class RobustnessEvaluation(Recipe):
    """Clean and adversarial accuracy at a list of epsilons, after validation and testing.

    At the end of every ``every_n_epochs``-th validation and of testing, the first
    ``num_samples`` inputs of the loader (per rank) are attacked at each epsilon; the
    correct counts are summed over ranks, so the accuracies are exact under DDP. Logged
    as ``robust/acc@<eps>`` (``robust/acc@0`` is clean) and drawn as accuracy against
    epsilon. Runs inside ``preserved_rng`` and in eval mode: it never changes training.

    Args:
        epsilons: Radii in input units; 0 (clean) is always added.
        attack: ``"pgd"`` (default) or ``"fgsm"``.
        steps: PGD steps.
        norm: ``"linf"`` or ``"l2"``.
        clip: Valid input range, or None.
        num_samples: Inputs attacked per rank.
        every_n_epochs: Validations between evaluations.
        plot: Save the accuracy-vs-epsilon figure.
        input_key: Index or key of the inputs in the batch.
        label_key: Index or key of the labels in the batch; None (as every recipe):
            the second of an ``(inputs, labels)`` batch, or a dict's one label key.

    Attributes:
        results: ``{"val_epoch<k>" | "test": {eps: accuracy}}``.
    """

    # Two evaluations (e.g. PGD and FGSM, or L-inf and L2) may share one Trainer.
    identity = ("attack", "norm", "epsilons=_epsilons_key", "steps")

    def __init__(
        self,
        epsilons: Sequence[float] = (0.05, 0.1, 0.2),
        attack: AttackName = "pgd",
        steps: int = 10,
        norm: Norm = "linf",
        clip: Sequence[float] | None = None,
        num_samples: int = 256,
        every_n_epochs: int = 1,
        plot: bool = True,
        input_key: int | str = 0,
        label_key: int | str | None = None,
    ) -> None:
        super().__init__()
        fix = "Pass a non-empty list of distinct, positive, finite radii, e.g. [0.05, 0.1]."
        eps = finite_sequence("epsilons", epsilons, fix)
        if min(eps) <= 0 or len(set(eps)) != len(eps):
            raise config_error("epsilons", epsilons, fix)
        input_key, label_key = check_keys(input_key, label_key)
        if attack not in ("fgsm", "pgd"):
            raise config_error("attack", attack, "Choose 'pgd' or 'fgsm'.")
        if norm not in ("linf", "l2"):
            raise config_error("norm", norm, "Choose 'linf' or 'l2'.")
        for name, value in (
            ("steps", steps),
            ("num_samples", num_samples),
            ("every_n_epochs", every_n_epochs),
        ):
            positive_int(name, value, "Pass an integer >= 1.")
        flag("plot", plot)
        self.epsilons = [0.0, *sorted(set(eps))]
        self.attack: AttackName = attack
        self.steps = steps
        self.norm: Norm = norm
        self.clip = check_clip(clip)
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.plot = plot
        self.input_key = input_key
        self.label_key = label_key
        self.results: dict[str, dict[float, float]] = {}
        self.figure_paths: dict[str, Path] = {}
        self.loss_attacked: str | None = None

    @property
    def _epsilons_key(self) -> tuple[float, ...]:
        return tuple(self.epsilons)

    def _sample(self, loader: Any) -> tuple[Tensor, Tensor]:
        xs, ys, total = [], [], 0
        for batch in loader:
            xs.append(batch_inputs(batch, self.input_key, "RobustnessEvaluation"))
            ys.append(batch_labels(batch, self.label_key, owner="RobustnessEvaluation"))
            total += len(ys[-1])
            if total >= self.num_samples:
                break
        return torch.cat(xs)[: self.num_samples], torch.cat(ys)[: self.num_samples]

    def _evaluate(
        self, trainer: Trainer, pl_module: LightningModule, loader: Any, key: str
    ) -> None:
        with preserved_rng():
            x, y = self._sample(loader)
            x, y = x.to(pl_module.device), y.to(pl_module.device)
            generator = torch.Generator().manual_seed(0)
            loss, self.loss_attacked = attack_loss(pl_module, "evaluation")
            counts = correct_counts(
                pl_module, x, y, self.epsilons, self.attack, steps=self.steps, norm=self.norm,
                clip=self.clip, loss_fn=loss, generator=generator,
            )  # fmt: skip
        total = helpers.reduce_sum(trainer, torch.tensor(float(len(y)), device=counts.device))
        accuracy = helpers.reduce_sum(trainer, counts.float()) / total
        result = {e: float(a) for e, a in zip(self.epsilons, accuracy.tolist(), strict=True)}
        self.results[key] = result
        metrics = {f"robust/acc@{e:g}": a for e, a in result.items()}
        if trainer.global_rank == 0:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
            if self.plot:
                path = helpers.log_figure(trainer, self._figure(result, key), f"robustness/{key}")
                if path is not None:
                    self.figure_paths[key] = path

    def _figure(self, result: dict[float, float], key: str) -> Any:
        figure = new_figure("RobustnessEvaluation(plot=True)", figsize=(5, 3.5))
        ax = figure.add_subplot()
        ax.plot(list(result), list(result.values()), marker="o")
        ax.set_xlabel(f"epsilon ({self.norm}, input units)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.set_title(f"Accuracy under {self.attack.upper()} ({key})")
        return figure

    @override
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        loaders = trainer.val_dataloaders
        loader = loaders[0] if isinstance(loaders, list | tuple) else loaders
        if loader is not None:
            self._evaluate(trainer, pl_module, loader, f"val_epoch{trainer.current_epoch}")

    @override
    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loaders = trainer.test_dataloaders
        loader = loaders[0] if isinstance(loaders, list | tuple) else loaders
        if loader is not None:
            self._evaluate(trainer, pl_module, loader, "test")

    @override
    def run_summary(self) -> RecipeSummary:
        """Accuracy at each epsilon, for every evaluation."""
        return RecipeSummary(
            "Robustness evaluation",
            facts={
                "attack": f"{self.attack} ({self.norm})",
                "loss attacked": self.loss_attacked or "none yet (nothing evaluated)",
                "accuracy at eps": {
                    k: {f"{e:g}": round(a, 4) for e, a in r.items()}
                    for k, r in self.results.items()
                },
            },
            figures={f"accuracy vs epsilon ({k})": p for k, p in self.figure_paths.items()},
        )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"results": {k: dict(v) for k, v in self.results.items()}}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.results = {
            k: {float(e): a for e, a in v.items()} for k, v in state_dict["results"].items()
        }
