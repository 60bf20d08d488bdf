"""AdversarialTraining and RobustnessEvaluation: the attacks, decided when and where."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor, nn
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.batch import batch_inputs
from lightning_recipes._core.batch_pipeline import (
    BatchStage,
    StageKind,
    close_batch_stages,
    end_batch_stages,
    run_batch_stages,
)
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.deprecation import renamed
from lightning_recipes._core.labels import LabelKey, batch_labels, check_label_key
from lightning_recipes._core.loss import attack_loss
from lightning_recipes._core.optional import new_figure
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.rng import preserved_rng
from lightning_recipes._core.validate import (
    batch_key,
    distinct_batch_keys,
    finite_sequence,
    flag,
    is_int,
    is_real,
    positive_int,
    positive_real,
)
from lightning_recipes.errors import config_error
from lightning_recipes.robustness.attacks import Norm, fgsm, pgd
from lightning_recipes.robustness.evaluate import AttackName, correct_counts

__all__ = ["AdversarialTraining", "RobustnessEvaluation"]


def _clip(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    fix = "Pass the valid input range [low, high] (finite numbers, low < high), or None."
    low_high = finite_sequence("clip", value, fix)
    if len(low_high) != 2 or not low_high[0] < low_high[1]:
        raise config_error("clip", value, fix)
    return low_high[0], low_high[1]


def _keys(input_key: Any, label_key: Any) -> tuple[int | str, LabelKey]:
    keys = batch_key("input_key", input_key), check_label_key(label_key)
    distinct_batch_keys(input_key=keys[0], label_key=keys[1])
    return keys


class AdversarialTraining(Recipe, BatchStage):
    """Train on adversarial versions of the training batches (FGSM-fast or PGD-k).

    At the module's first forward call of each training step, ``ratio`` of the inputs it
    receives (after any augmentation, whatever the callback order) are replaced by their
    adversarial version under the module's own loss (``loss_fn`` / ``criterion`` /
    ``loss``, else cross-entropy; class weights installed by ClassWeighting apply). The
    attack runs in eval mode, so BatchNorm statistics see only the training forward
    pass, and takes gradients with respect to the perturbation only, so nothing leaks
    into the parameters' ``.grad``. ``"fgsm"`` is the fast FGSM with a random start of
    Wong et al. (2020); ``"pgd"`` is PGD with ``steps`` steps (Madry et al. 2018). Random
    starts come from a generator seeded by (``seed``, rank, global step): a resumed run
    replays the same perturbations and the global RNG is never touched.

    Args:
        eps: Radius of the perturbation, in input units (e.g. 8/255 for [0, 1] images).
        attack: ``"fgsm"`` (fast, random start) or ``"pgd"`` (the name
            `RobustnessEvaluation` uses).
        steps: PGD steps.
        norm: ``"linf"`` or ``"l2"`` (PGD).
        ratio: Share of each batch replaced, in (0, 1].
        clip: Valid input range, e.g. ``[0.0, 1.0]``, or None.
        input_key: Index or key of the inputs in the batch.
        label_key: Index or key of the labels in the batch; None (as every recipe):
            the second of an ``(inputs, labels)`` batch, or a dict's one label key.
        seed: Seed of the random starts.
        method: Deprecated name of ``attack`` (goes in the next release).

    Examples:
        >>> AdversarialTraining(eps=0.1, attack="pgd", steps=3).attack
        'pgd'
    """

    # "method": the key of checkpoints saved before the rename, so that they still load.
    identity = ("eps", "method=attack", "norm")
    stage_kind: ClassVar[StageKind] = "forward"

    def __init__(
        self,
        eps: float,
        attack: Literal["fgsm", "pgd"] = "fgsm",
        steps: int = 7,
        norm: Norm = "linf",
        ratio: float = 1.0,
        clip: Sequence[float] | None = None,
        input_key: int | str = 0,
        label_key: int | str | None = None,
        seed: int = 0,
        method: Literal["fgsm", "pgd"] | None = None,
    ) -> None:
        super().__init__()
        attack = renamed("AdversarialTraining", "method", "attack", method, attack, "fgsm")
        self.eps = positive_real("eps", eps, "Pass a positive, finite number, in input units.")
        if attack not in ("fgsm", "pgd"):
            raise config_error("attack", attack, "Choose 'fgsm' (fast, random start) or 'pgd'.")
        positive_int("steps", steps, "Pass a number of PGD steps >= 1.")
        if norm not in ("linf", "l2"):
            raise config_error("norm", norm, "Choose 'linf' or 'l2'.")
        if attack == "fgsm" and norm != "linf":
            raise config_error("norm", norm, "FGSM is an L-inf attack: use attack='pgd' for l2.")
        if not is_real(ratio) or not 0 < ratio <= 1:
            raise config_error("ratio", ratio, "Pass the share of the batch to replace, in (0, 1].")
        input_key, label_key = _keys(input_key, label_key)
        if not is_int(seed):
            raise config_error("seed", seed, "Pass an integer seed.")
        self.attack: Literal["fgsm", "pgd"] = attack
        self.steps = steps
        self.norm: Norm = norm
        self.ratio = float(ratio)
        self.clip = _clip(clip)
        self.input_key = input_key
        self.label_key = label_key
        self.seed = seed
        self.batches = 0
        self.loss_attacked: str | None = None

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._labels: Tensor | None = None
        self._generator: torch.Generator | None = None
        close_batch_stages(trainer)  # a step of an earlier fit is not this fit's

    @override
    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # The attack is the pipeline's forward stage: it runs at the module's first forward
        # call of the step, after every batch stage (augmentation) and whatever
        # training_step does to the inputs, whatever the callback order.
        run_batch_stages(trainer, pl_module, batch, batch_idx)

    @override
    def prepare_stage(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        batch_inputs(batch, self.input_key, "AdversarialTraining")  # checked now
        self._labels = batch_labels(batch, self.label_key, owner="AdversarialTraining")
        self._generator = torch.Generator().manual_seed(
            hash((self.seed, trainer.global_rank, trainer.global_step)) % 2**63
        )

    @override
    def run_forward_stage(self, module: nn.Module, inputs: Tensor) -> Tensor:
        x, y = inputs, self._labels
        assert y is not None
        count = max(1, round(self.ratio * x.shape[0]))
        loss, self.loss_attacked = attack_loss(module, "training")
        part = x[:count].detach()
        if self.attack == "fgsm":
            adv = fgsm(module, part, y[:count], self.eps, loss_fn=loss, clip=self.clip,
                       random_start=True, generator=self._generator)  # fmt: skip
        else:
            adv = pgd(module, part, y[:count], self.eps, steps=self.steps, norm=self.norm,
                      loss_fn=loss, clip=self.clip, generator=self._generator)  # fmt: skip
        self.batches += 1
        return adv if count == x.shape[0] else torch.cat([adv, x[count:]])

    @override
    def forward_stage_missed(self) -> None:
        helpers.rank_zero_warn(
            "AdversarialTraining: the module was never called on this training step "
            "(training_step does not call self(x)?), so nothing was attacked. Call the "
            "module itself on the inputs in training_step."
        )

    @override
    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        end_batch_stages(trainer)

    @override
    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        close_batch_stages(trainer)

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        close_batch_stages(trainer)
        self._labels = None
        self._generator = None  # a torch.Generator does not pickle

    @override
    def run_summary(self) -> RecipeSummary:
        """The attack used and how many batches it replaced."""
        return RecipeSummary(
            "Adversarial training",
            facts={
                "attack": self.attack,
                "eps": self.eps,
                "norm": self.norm,
                "steps": self.steps if self.attack == "pgd" else 1,
                "share of each batch": self.ratio,
                "batches attacked": self.batches,
                "loss attacked": self.loss_attacked or "none yet (no training step)",
            },
        )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches = int(state_dict["batches"])


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
        input_key, label_key = _keys(input_key, label_key)
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
        self.clip = _clip(clip)
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
