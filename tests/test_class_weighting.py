"""ClassWeighting in a Trainer: the weights it installs, and what they do to minority recall."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightning.pytorch import LightningModule, Trainer, seed_everything
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_recipes import RecipeConfigError
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.imbalance.callback import ClassWeighting
from lightning_recipes.imbalance.losses import FocalLoss
from lightning_recipes.imbalance.metrics import PerClassRecall
from lightning_recipes.modules import Classifier, mlp

MakeTrainer = Callable[..., Trainer]
MINORITY = {0: 0.05, 1: 0.05, 2: 0.05, 3: 0.05, 4: 0.05}


def imbalanced_digits(seed: int = 0) -> DigitsDataModule:
    return DigitsDataModule(batch_size=32, imbalance=MINORITY, seed=seed)


def test_installs_sklearn_balanced_weights_on_cross_entropy(make_trainer: MakeTrainer) -> None:
    weighting = ClassWeighting("balanced")
    model = Classifier(mlp(64, [16]), num_classes=10)
    data = imbalanced_digits()
    trainer = make_trainer(limit_train_batches=1, limit_val_batches=0, callbacks=[weighting])
    trainer.fit(model, data)
    labels = data.train_dataset.targets.numpy()  # type: ignore[union-attr]
    expected = compute_class_weight("balanced", classes=np.arange(10), y=labels)
    np.testing.assert_allclose(model.loss_fn.weight.numpy(), expected, rtol=1e-6)
    assert weighting.counts == np.bincount(labels, minlength=10).tolist()
    # Non-persistent: the model's checkpoint keeps its shape.
    assert "loss_fn.weight" not in model.state_dict()


def per_class_recall(model: Classifier, data: DigitsDataModule) -> torch.Tensor:
    metric = PerClassRecall(num_classes=10)
    model.eval()
    with torch.no_grad():
        for x, y in data.test_dataloader():
            metric.update(model(x), y)
    return metric.compute()


def test_raises_minority_recall_on_imbalanced_digits(make_trainer: MakeTrainer) -> None:
    recalls = {}
    for name, callbacks in (("plain", []), ("weighted", [ClassWeighting("balanced")])):
        seed_everything(0)
        model = Classifier(mlp(64, [32]), num_classes=10, lr=3e-3)
        data = imbalanced_digits()
        trainer = make_trainer(max_epochs=8, limit_val_batches=0, callbacks=callbacks)
        trainer.fit(model, data)
        recalls[name] = per_class_recall(model, data)
    minority_plain = recalls["plain"][:5].mean()
    minority_weighted = recalls["weighted"][:5].mean()
    assert minority_weighted > minority_plain + 0.05, (minority_plain, minority_weighted)


class Unlabelled(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """A dataset that hides its labels: ClassWeighting must iterate the loader."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self._x, self._y = x, y

    def __len__(self) -> int:
        return len(self._y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._x[i], self._y[i]


def toy(n_major: int = 90, n_minor: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.tensor([0] * n_major + [1] * n_minor)
    return torch.randn(len(y), 4), y


class Tiny(LightningModule):
    def __init__(self, loss: nn.Module, outputs: int = 2) -> None:
        super().__init__()
        self.layer = nn.Linear(4, outputs)
        self.criterion = loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        out = self.layer(x)
        if isinstance(self.criterion, nn.BCEWithLogitsLoss):
            return self.criterion(out.squeeze(-1), y.float())
        return self.criterion(out, y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_counts_by_iterating_when_the_dataset_hides_its_labels(make_trainer: MakeTrainer) -> None:
    x, y = toy()
    weighting = ClassWeighting()
    model = Tiny(nn.CrossEntropyLoss())
    loader = DataLoader(Unlabelled(x, y), batch_size=16, shuffle=True)
    make_trainer(callbacks=[weighting]).fit(model, loader)
    assert weighting.counts == [90, 10]
    assert model.criterion.weight.tolist() == pytest.approx([100 / 180, 100 / 20])


def test_explicit_labels_and_effective_number(make_trainer: MakeTrainer) -> None:
    x, y = toy()
    weighting = ClassWeighting("effective_number", beta=0.99, labels=y.numpy())
    model = Tiny(nn.NLLLoss())
    make_trainer(callbacks=[weighting]).fit(model, DataLoader(Unlabelled(x, y), batch_size=16))
    raw = [(1 - 0.99) / (1 - 0.99**n) for n in (90, 10)]
    expected = [2 * r / sum(raw) for r in raw]
    assert model.criterion.weight.tolist() == pytest.approx(expected, rel=1e-5)


def test_bce_gets_a_pos_weight_and_focal_loss_its_weight(make_trainer: MakeTrainer) -> None:
    x, y = toy()
    bce = Tiny(nn.BCEWithLogitsLoss(), outputs=1)
    make_trainer(callbacks=[ClassWeighting()]).fit(bce, DataLoader(TensorDataset(x, y)))
    assert bce.criterion.pos_weight.tolist() == pytest.approx([9.0])
    focal = Tiny(FocalLoss(gamma=2.0))
    make_trainer(callbacks=[ClassWeighting()]).fit(focal, DataLoader(TensorDataset(x, y)))
    assert focal.criterion.weight.tolist() == pytest.approx([100 / 180, 100 / 20])


def test_resume_reinstalls_the_same_weights_without_counting(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    model = Classifier(mlp(64, [16]), num_classes=10)
    weighting = ClassWeighting()
    trainer = make_trainer(limit_train_batches=2, limit_val_batches=0, callbacks=[weighting])
    trainer.fit(model, imbalanced_digits())
    ckpt = tmp_path / "weighted.ckpt"
    trainer.save_checkpoint(ckpt)
    resumed = ClassWeighting(labels=[0, 1])  # labels that would give other weights
    fresh = Classifier(mlp(64, [16]), num_classes=10)
    trainer = make_trainer(
        max_epochs=2, limit_train_batches=2, limit_val_batches=0, callbacks=[resumed]
    )
    trainer.fit(fresh, imbalanced_digits(), ckpt_path=ckpt)  # loads with strict state_dict
    assert torch.equal(fresh.loss_fn.weight, model.loss_fn.weight)
    assert resumed.counts == weighting.counts


def test_no_loss_found_names_the_attributes(make_trainer: MakeTrainer) -> None:
    class Hidden(Tiny):
        def __init__(self) -> None:
            super().__init__(nn.CrossEntropyLoss())
            self.objective = self.criterion
            del self.criterion

    x, y = toy()
    with pytest.raises(RecipeConfigError, match=r"loss_fn / criterion / loss.*loss_attr"):
        make_trainer(callbacks=[ClassWeighting()]).fit(Hidden(), DataLoader(TensorDataset(x, y)))


def test_unsupported_loss_is_refused(make_trainer: MakeTrainer) -> None:
    x, y = toy()
    model = Tiny(nn.MSELoss())
    with pytest.raises(RecipeConfigError, match="cannot weight criterion = MSELoss"):
        make_trainer(callbacks=[ClassWeighting()]).fit(model, DataLoader(TensorDataset(x, y)))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"scheme": "inverse"}, "scheme"),
        ({"beta": -0.1}, "beta"),
        ({"beta": 1.0}, "beta"),
        ({"zero_count": "skip"}, "zero_count"),
        ({"num_classes": 1}, "num_classes"),
        ({"labels": [0.5, 1.5]}, "labels"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(RecipeConfigError, match=name):
        ClassWeighting(**kwargs)


def test_labels_of_the_wrong_length_are_refused(make_trainer: MakeTrainer) -> None:
    x, y = toy()
    weighting = ClassWeighting(labels=y[:50].numpy())
    with pytest.raises(RecipeConfigError, match=r"labels='<50 labels>'.*has 100"):
        make_trainer(callbacks=[weighting]).fit(
            Tiny(nn.CrossEntropyLoss()), DataLoader(TensorDataset(x, y))
        )
