"""AdversarialTraining and RobustnessEvaluation in a real Trainer, on a user's module."""

from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer, seed_everything
from torch import Tensor, nn

from lightning_recipes import AdversarialTraining, RecipeConfigError, RobustnessEvaluation
from lightning_recipes.data import DigitsDataModule


class Recorder(LightningModule):
    """BatchNorm first, so its running mean shows which inputs trained it."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(64, momentum=0.1)
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.loss_fn = nn.CrossEntropyLoss()
        self.seen: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.norm(x))  # type: ignore[no-any-return]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        self.clean = x.detach().clone()
        logits = self(x)
        return self.loss_fn(logits, y)  # type: ignore[no-any-return]

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean())

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)  # weights stay: the stats speak


def trainer(tmp_path: Path, callbacks: list[Any], **kwargs: Any) -> Trainer:
    args: dict[str, Any] = {
        "max_epochs": 1, "limit_train_batches": 1, "limit_val_batches": 1, "logger": False,
        "enable_checkpointing": False, "enable_progress_bar": False,
        "enable_model_summary": False, "default_root_dir": tmp_path, "accelerator": "cpu",
    }  # fmt: skip
    args.update(kwargs)
    return Trainer(callbacks=callbacks, **args)


def test_the_model_trains_on_attacked_inputs_and_batchnorm_sees_only_them(tmp_path: Path) -> None:
    seed_everything(0)
    model = Recorder()
    seen: list[Tensor] = []
    model.norm.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    attack = AdversarialTraining(eps=0.1, attack="pgd", steps=3, ratio=0.5, clip=[0.0, 1.0])
    trainer(tmp_path, [attack], limit_val_batches=0, num_sanity_val_steps=0).fit(
        model, DigitsDataModule(batch_size=32)
    )
    trained_on = seen[-1]  # the training forward (the attack's own ran in eval mode)
    half = trained_on.shape[0] // 2
    delta = trained_on - model.clean
    assert float(delta[:half].abs().max()) <= 0.1 + 1e-6
    assert float(delta[:half].abs().max()) > 0.0  # attacked
    assert torch.equal(trained_on[half:], model.clean[half:])  # ratio 0.5: the rest is clean
    # One momentum update, from the inputs of the training forward only.
    assert torch.allclose(model.norm.running_mean, 0.1 * trained_on.mean(0), atol=1e-6)
    assert model.norm.num_batches_tracked == 1
    assert attack.batches == 1


def test_robustness_evaluation_reports_accuracy_that_falls_with_epsilon(tmp_path: Path) -> None:
    seed_everything(0)
    model = Recorder()
    model.configure_optimizers = lambda: torch.optim.Adam(model.parameters(), lr=1e-2)  # type: ignore[method-assign]
    evaluation = RobustnessEvaluation(epsilons=[0.05, 0.3], steps=5, num_samples=64, plot=False)
    fit = trainer(tmp_path, [evaluation], max_epochs=3, limit_train_batches=20, limit_val_batches=2)
    data = DigitsDataModule(batch_size=32)
    fit.fit(model, data)
    fit.test(model, data, verbose=False)  # under inference mode
    assert set(evaluation.results) == {"val_epoch0", "val_epoch1", "val_epoch2", "test"}
    test = evaluation.results["test"]
    assert list(test) == [0.0, 0.05, 0.3]
    assert test[0.0] > 0.5
    assert test[0.0] >= test[0.05] >= test[0.3]
    assert test[0.3] < test[0.0]
    assert evaluation.run_summary().facts["accuracy at eps"]["test"]["0.3"] == round(test[0.3], 4)
    # The module has a loss_fn, but an evaluation attacks cross-entropy (comparable).
    assert evaluation.run_summary().facts["loss attacked"].startswith("cross-entropy")


class CallsCrossEntropy(Recorder):
    """No loss attribute: ``F.cross_entropy`` in the step, with a weight the attack ignores."""

    def __init__(self) -> None:
        super().__init__()
        del self.loss_fn

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        self.clean = x.detach().clone()
        return nn.functional.cross_entropy(self(x), y)


@pytest.mark.parametrize(
    ("module", "said"),
    [(Recorder, "the module's loss_fn (CrossEntropyLoss)"), (CallsCrossEntropy, "cross-entropy (")],
)
def test_adversarial_training_attacks_the_modules_loss_else_cross_entropy_and_says_which(
    tmp_path: Path, module: type[Recorder], said: str
) -> None:
    seed_everything(0)
    model = module()
    used: list[Any] = []
    if hasattr(model, "loss_fn"):
        model.loss_fn.register_forward_hook(lambda m, a, out: used.append(a))
    attack = AdversarialTraining(eps=0.1, attack="fgsm")
    trainer(tmp_path, [attack], limit_val_batches=0, num_sanity_val_steps=0).fit(
        model, DigitsDataModule(batch_size=32)
    )
    assert attack.run_summary().facts["loss attacked"].startswith(said)
    if hasattr(model, "loss_fn"):
        assert len(used) == 2  # once by the attack (on the attacked part), once by the step


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"eps": 0}, "eps"),
        ({"eps": -1.0}, "eps"),
        ({"eps": "0.1"}, "eps"),
        ({"eps": 0.1, "attack": "cw"}, "attack"),
        ({"eps": 0.1, "steps": 0}, "steps"),
        ({"eps": 0.1, "norm": "l1"}, "norm"),
        ({"eps": 0.1, "norm": "l2"}, "norm"),  # FGSM is L-inf
        ({"eps": 0.1, "ratio": 0.0}, "ratio"),
        ({"eps": 0.1, "ratio": 1.5}, "ratio"),
        ({"eps": 0.1, "clip": [1.0, 0.0]}, "clip"),
        ({"eps": 0.1, "input_key": 1.5}, "input_key"),
        ({"eps": 0.1, "seed": "x"}, "seed"),
    ],
)
def test_adversarial_training_refuses_bad_arguments(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=argument):
        AdversarialTraining(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"epsilons": []}, "epsilons"),
        ({"epsilons": "0.1"}, "epsilons"),
        ({"epsilons": [-0.1]}, "epsilons"),
        ({"epsilons": [0.0]}, "epsilons"),
        ({"attack": "cw"}, "attack"),
        ({"norm": "l1"}, "norm"),
        ({"steps": 0}, "steps"),
        ({"num_samples": 0}, "num_samples"),
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"plot": "yes"}, "plot"),
        ({"clip": [0.0]}, "clip"),
    ],
)
def test_robustness_evaluation_refuses_bad_arguments(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=argument):
        RobustnessEvaluation(**kwargs)


def test_method_is_the_deprecated_name_of_attack() -> None:
    with pytest.warns(DeprecationWarning, match=r"pass attack="):
        training = AdversarialTraining(eps=0.1, method="pgd", steps=2)
    assert training.attack == "pgd"
    with pytest.raises(RecipeConfigError, match="not both"):
        AdversarialTraining(eps=0.1, attack="pgd", method="fgsm")


def test_the_labels_default_is_every_recipes_rule_never_a_guess(tmp_path: Path) -> None:
    # (inputs, labels, sample_weight): the house rule refuses to guess which is the label.
    from torch.utils.data import DataLoader, TensorDataset

    x, y = torch.rand(16, 64), torch.randint(0, 10, (16,))
    loader = DataLoader(TensorDataset(x, y, torch.ones(16)), batch_size=8)
    attack = AdversarialTraining(eps=0.1)
    assert attack.label_key is None
    with pytest.raises(RecipeConfigError, match="label_key"):
        trainer(tmp_path, [attack], limit_val_batches=0).fit(Recorder(), loader)
