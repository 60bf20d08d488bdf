"""EnsembleModule: average the predicted probabilities of several models."""

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from typing_extensions import override

from lightning_recipes.ensembles.average import _normalised_weights, average_probabilities
from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = ["EnsembleModule"]


class EnsembleModule(LightningModule):
    """A LightningModule whose prediction is the mean of its members' probabilities.

    For ``trainer.validate``/``test``/``predict`` (it does not train). Members are any
    ``nn.Module`` (LightningModules included) whose ``forward(inputs)`` returns class
    logits: the snapshots of a `SnapshotEnsemble`, the K models of cross-validation, or
    models trained from several seeds.

    Batches: a tensor (inputs only; predict) or a sequence ``(inputs, targets, ...)``.
    Validation and test log ``{stage}_acc`` and ``{stage}_nll`` (negative
    log-likelihood of the averaged probabilities) per epoch; ``predict`` returns the
    averaged probabilities. Members run in eval mode (the Trainer sets it).

    Args:
        members: The models, at least one.
        weights: Optional non-negative weight per member (normalised); None for equal.

    Examples:
        >>> import torch
        >>> ens = EnsembleModule([torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)])
        >>> bool(torch.allclose(ens(torch.zeros(2, 4)).sum(-1), torch.ones(2)))
        True
    """

    def __init__(self, members: Sequence[nn.Module], weights: list[float] | None = None) -> None:
        super().__init__()
        if isinstance(members, nn.Module) or not isinstance(members, Sequence):
            raise config_error(
                "members", type(members).__name__, "Pass a list of nn.Module, one per member."
            )
        if len(members) == 0:
            raise config_error("members", [], "Pass at least one model.")
        for i, member in enumerate(members):
            if not isinstance(member, nn.Module):
                raise config_error(
                    f"members[{i}]", type(member).__name__, "Pass an nn.Module returning logits."
                )
        _normalised_weights(weights, len(members))  # validates
        self.members = nn.ModuleList(members)
        self.weights = None if weights is None else [float(w) for w in weights]

    @classmethod
    def from_state_dicts(
        cls,
        template: nn.Module,
        state_dicts: Sequence[Mapping[str, Tensor]],
        weights: list[float] | None = None,
    ) -> "EnsembleModule":
        """Members built by loading each state dict into a deep copy of ``template``.

        Args:
            template: A module of the architecture the state dicts belong to.
            state_dicts: One full state dict per member (strictly matching ``template``).
            weights: Optional weight per member.

        Raises:
            RecipeConfigError: If ``template`` is not a module, the list is empty, or a
                state dict does not fit the template.
        """
        if not isinstance(template, nn.Module):
            raise config_error("template", type(template).__name__, "Pass an nn.Module.")
        if isinstance(state_dicts, Mapping) or not isinstance(state_dicts, Sequence):
            raise config_error(
                "state_dicts", type(state_dicts).__name__, "Pass a list of state dicts."
            )
        if len(state_dicts) == 0:
            raise config_error("state_dicts", [], "Pass at least one state dict.")
        members: list[nn.Module] = []
        # deepcopy leaves the Trainer behind (LightningModule.__getstate__ drops it).
        for i, state in enumerate(state_dicts):
            if not isinstance(state, Mapping):
                raise config_error(
                    f"state_dicts[{i}]", type(state).__name__, "Pass a state dict (a mapping)."
                )
            member = copy.deepcopy(template)
            try:
                member.load_state_dict(state, strict=True)
            except RuntimeError as error:
                raise RecipeConfigError(
                    f"Invalid state_dicts[{i}]: it does not fit the template "
                    f"{type(template).__name__} ({error}). Pass state dicts of this "
                    "architecture."
                ) from error
            members.append(member)
        return cls(members, weights=weights)

    @classmethod
    def from_checkpoints(
        cls,
        module_class: type[LightningModule] | nn.Module,
        paths: Sequence[str | Path],
        weights: list[float] | None = None,
    ) -> "EnsembleModule":
        """Members loaded from Lightning checkpoint files (e.g. one per fold).

        Args:
            module_class: The LightningModule class of the checkpoints (each member is
                ``module_class.load_from_checkpoint(path)``), or a template module: each
                checkpoint's ``state_dict`` is then loaded (``weights_only=True``) into a
                deep copy of it. Use a template when the class cannot rebuild itself from
                the saved hyperparameters (a module taking an ``nn.Module`` argument, as
                the `Classifier` built by LightningCLI).
            paths: Checkpoint files, one per member.
            weights: Optional weight per member.
        """
        if not (
            isinstance(module_class, nn.Module)
            or (isinstance(module_class, type) and issubclass(module_class, LightningModule))
        ):
            raise config_error(
                "module_class",
                module_class,
                "Pass the LightningModule class of the checkpoints, or a template module.",
            )
        if isinstance(paths, str | Path) or not isinstance(paths, Sequence) or not paths:
            raise config_error("paths", paths, "Pass a non-empty list of checkpoint paths.")
        if len({Path(path).resolve() for path in paths}) != len(paths):
            raise config_error(
                "paths",
                [str(path) for path in paths],
                "A checkpoint appears twice, which would count one model twice: give each "
                "once (pass weights= to weigh a member more).",
            )
        for path in paths:
            if not Path(path).is_file():
                raise config_error("paths", str(path), "No such checkpoint file.")
        if isinstance(module_class, nn.Module):
            states = [
                torch.load(p, map_location="cpu", weights_only=True)["state_dict"] for p in paths
            ]
            return cls.from_state_dicts(module_class, states, weights=weights)
        members = [module_class.load_from_checkpoint(p, map_location="cpu") for p in paths]
        return cls(members, weights=weights)

    @override
    def forward(self, inputs: Any) -> Tensor:
        """The averaged probabilities of the members on ``inputs``."""
        return average_probabilities([member(inputs) for member in self.members], self.weights)

    @staticmethod
    def _split(batch: Any) -> tuple[Any, Tensor | None]:
        if isinstance(batch, Tensor):
            return batch, None
        if isinstance(batch, list | tuple) and len(batch) >= 1:
            target = batch[1] if len(batch) > 1 and isinstance(batch[1], Tensor) else None
            return batch[0], target
        raise RecipeConfigError(
            f"EnsembleModule got a batch of type {type(batch).__name__}; it needs a tensor "
            "of inputs or a sequence (inputs, targets, ...)."
        )

    def _evaluate(self, batch: Any, stage: str) -> None:
        inputs, target = self._split(batch)
        probs = self(inputs)
        if target is None:
            raise RecipeConfigError(
                f"EnsembleModule.{stage} needs batches (inputs, targets) to measure the "
                "ensemble; use trainer.predict for inputs only."
            )
        nll = nn.functional.nll_loss(torch.log(probs.clamp_min(1e-12)), target)
        acc = (probs.argmax(-1) == target).float().mean()
        self.log(f"{stage}_nll", nll, sync_dist=True)
        self.log(f"{stage}_acc", acc, sync_dist=True)

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    @override
    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    @override
    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        inputs, _ = self._split(batch)
        return self(inputs)  # type: ignore[no-any-return]
