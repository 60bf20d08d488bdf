"""The batch pipeline: one order of the stages, whatever the callback order, one forward hook.

Stages here are small `BatchStage` callbacks that write down what they saw, on a module
written as a user writes one (its training step reshapes the inputs before ``self(x)``).
"""

from typing import Any, ClassVar

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_recipes._core.batch_pipeline import (
    BatchStage,
    StageKind,
    close_batch_stages,
    end_batch_stages,
    run_batch_stages,
)
from lightning_recipes.augmentation import LabelSmoothing, MixUp
from lightning_recipes.robustness import AdversarialTraining


class Flattening(LightningModule):
    """A user's module: it flattens the inputs in training_step, then calls itself."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(6, 3)
        self.seen: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(x)
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        x = x.reshape(x.shape[0], -1)
        out = self(x)
        return nn.functional.cross_entropy(out, y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Recording(BatchStage):
    events: ClassVar[list[str]] = []

    def __init__(self, kind: StageKind, name: str) -> None:
        self.stage_kind = kind  # type: ignore[misc]
        self.name = name

    @property
    def state_key(self) -> str:
        return self.name

    def on_train_batch_start(self, trainer: Trainer, pl_module: Any, batch: Any, i: int) -> None:
        run_batch_stages(trainer, pl_module, batch, i)

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        end_batch_stages(trainer)

    def teardown(self, trainer: Trainer, pl_module: Any, stage: str) -> None:
        close_batch_stages(trainer)

    def prepare_stage(self, trainer: Trainer, pl_module: Any, batch: Any, i: int) -> None:
        self.events.append(f"prepare {self.name}")

    def run_stage(self, trainer: Trainer, batch: Any, i: int) -> None:
        self.events.append(f"run {self.name}")
        batch[0] = batch[0] + 1.0

    def finish_stages(self) -> None:
        self.events.append(f"finish {self.name}")

    def run_forward_stage(self, module: nn.Module, inputs: Tensor) -> Tensor:
        self.events.append(f"forward {self.name} {tuple(inputs.shape)}")
        module(inputs)  # a stage's own call of the module is not intercepted
        return inputs * 0.0

    def forward_stage_missed(self) -> None:
        self.events.append(f"missed {self.name}")


def _loader() -> DataLoader[Any]:
    x = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(x, torch.tensor([0, 1, 2, 0])), batch_size=4)


def _fit(model: LightningModule, callbacks: list[Any], steps: int = 1) -> Trainer:
    trainer = Trainer(
        max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=callbacks,
    )  # fmt: skip
    trainer.fit(model, _loader())
    return trainer


@pytest.mark.parametrize("reverse", [False, True])
def test_stages_run_by_kind_whatever_the_callback_order(reverse: bool) -> None:
    Recording.events = []
    stages = [
        Recording("forward", "attack"),
        Recording("smooth", "smooth"),
        Recording("mix", "mix"),
        Recording("transform", "transform"),
    ]
    model = Flattening()
    _fit(model, stages[::-1] if reverse else stages)
    order = ["transform", "mix", "smooth", "attack"]
    assert Recording.events == [
        *(f"prepare {n}" for n in order),
        *(f"run {n}" for n in order[:3]),
        *(f"finish {n}" for n in order),
        "forward attack (4, 6)",  # the inputs the module receives: flattened by the step
    ]
    stage_call, step_call = model.seen  # the stage's own call passed the hook freely
    assert torch.equal(step_call, torch.zeros(4, 6))  # the step's: what the stage returned
    batch_inputs = _loader().dataset.tensors[0]  # type: ignore[attr-defined]
    assert torch.equal(
        stage_call, (batch_inputs + 1.0 + 1.0 + 1.0).reshape(4, 6)
    )  # after 3 batch stages
    assert not model._forward_pre_hooks  # one hook, removed at its first call


def test_a_step_that_never_calls_the_module_tells_the_forward_stage() -> None:
    class NoForward(Flattening):
        def training_step(self, batch: Any, batch_idx: int) -> Tensor:
            return self.net.weight.sum() * 0.0

    Recording.events = []
    model = NoForward()
    _fit(model, [Recording("forward", "attack")], steps=2)
    assert Recording.events.count("missed attack") == 2
    assert not model._forward_pre_hooks


def test_the_library_stages_share_the_one_pipeline() -> None:
    # MixUp (a batch stage) and AdversarialTraining (the forward stage) on one Trainer: the
    # attack sees the mixed inputs, in either callback order, with the same result.
    results = []
    for order in (0, 1):
        torch.manual_seed(0)
        model = Flattening()
        recipes = [MixUp(alpha=0.4, seed=0), LabelSmoothing(0.1), AdversarialTraining(eps=0.1)]
        _fit(model, recipes if order == 0 else recipes[::-1], steps=3)
        results.append(model.net.weight.detach().clone())
        assert recipes[2].batches == 3
        assert not model._forward_pre_hooks
    assert torch.equal(results[0], results[1])
