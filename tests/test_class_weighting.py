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
from lightning_recipes.imbalance.class_weighting import ClassWeighting
from lightning_recipes.imbalance.losses import FocalLoss
from lightning_recipes.imbalance.metrics import PerClassRecall
from lightning_recipes.modules import MLP, Classifier

MakeTrainer = Callable[..., Trainer]
MINORITY = {0: 0.05, 1: 0.05, 2: 0.05, 3: 0.05, 4: 0.05}


def imbalanced_digits(seed: int = 0) -> DigitsDataModule:
    return DigitsDataModule(batch_size=32, imbalance=MINORITY, seed=seed)


def test_installs_sklearn_balanced_weights_on_cross_entropy(make_trainer: MakeTrainer) -> None:
    weighting = ClassWeighting("balanced")
    model = Classifier(MLP(64, [16]), num_classes=10)
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
        model = Classifier(MLP(64, [32]), num_classes=10, lr=3e-3)
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
    model = Classifier(MLP(64, [16]), num_classes=10)
    weighting = ClassWeighting()
    trainer = make_trainer(limit_train_batches=2, limit_val_batches=0, callbacks=[weighting])
    trainer.fit(model, imbalanced_digits())
    ckpt = tmp_path / "weighted.ckpt"
    trainer.save_checkpoint(ckpt)
    resumed = ClassWeighting(labels=[0, 1])  # labels that would give other weights
    fresh = Classifier(MLP(64, [16]), num_classes=10)
    trainer = make_trainer(
        max_epochs=2, limit_train_batches=2, limit_val_batches=0, callbacks=[resumed]
    )
    trainer.fit(fresh, imbalanced_digits(), ckpt_path=ckpt)  # loads with strict state_dict
    assert torch.equal(fresh.loss_fn.weight, model.loss_fn.weight)
    assert resumed.counts == weighting.counts


def test_a_loss_under_another_name_is_weighted_as_the_attribute_would_be(
    make_trainer: MakeTrainer,
) -> None:
    class Hidden(Tiny):
        def __init__(self) -> None:
            super().__init__(nn.CrossEntropyLoss())
            self.objective = self.criterion
            del self.criterion

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return self.objective(self.layer(x), y)  # type: ignore[no-any-return]

    x, y = toy()
    weights = []
    for model in (Hidden(), Tiny(nn.CrossEntropyLoss()), Hidden()):
        torch.manual_seed(0)
        model.layer.reset_parameters()
        callbacks = [ClassWeighting()] if len(weights) < 2 else []
        loader = DataLoader(TensorDataset(x, y), batch_size=20)  # a mean over one is unweighted
        make_trainer(callbacks=callbacks).fit(model, loader)
        weights.append(model.layer.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])  # found by the loss path, not by name
    assert not torch.equal(weights[0], weights[2])  # and the weights did change training
    with pytest.raises(RecipeConfigError, match="loss_attr"):
        make_trainer(callbacks=[ClassWeighting(loss_attr="nope")]).fit(
            Hidden(), DataLoader(TensorDataset(x, y))
        )


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


# --- which tensor is the label: never guessed (issue 13) --------------------------------


class Rows(Dataset[Any]):
    """Yields (x, y, extra) tuples or dicts, with no labels attribute: counted by iterating."""

    def __init__(self, items: dict[str, torch.Tensor], as_dict: bool = False) -> None:
        self.items, self.as_dict = items, as_dict

    def __len__(self) -> int:
        return len(next(iter(self.items.values())))

    def __getitem__(self, i: int) -> Any:
        row = {key: value[i] for key, value in self.items.items()}
        return row if self.as_dict else tuple(row.values())


class AnyBatch(LightningModule):
    """Reads the label from ``label_key`` of any batch and counts its training steps."""

    def __init__(self, label_key: int | str = 1, loss: nn.Module | None = None) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)
        self.loss_fn = loss if loss is not None else nn.CrossEntropyLoss()
        self.label_key = label_key
        self.steps = 0

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.steps += 1
        x = batch["x"] if isinstance(batch, dict) else batch[0]
        return self.loss_fn(self.layer(x), batch[self.label_key])  # type: ignore[no-any-return]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def with_groups() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """90/10 labels, and an integer group id whose counts are 50/50 (a plausible mix-up)."""
    x, y = toy()
    return x, y, torch.arange(100) % 2


@pytest.mark.parametrize("dataset", ["tensor_dataset", "iterated"])
def test_three_element_batches_are_refused_without_label_key(
    make_trainer: MakeTrainer, dataset: str
) -> None:
    x, y, group = with_groups()
    data: Any = (
        TensorDataset(x, y, group)
        if dataset == "tensor_dataset"
        else Rows({"x": x, "y": y, "group": group})
    )
    model = AnyBatch()
    with pytest.raises(RecipeConfigError, match=r"label_key.*\(x, y, sample_weight\)"):
        make_trainer(callbacks=[ClassWeighting(zero_count="zero")]).fit(
            model, DataLoader(data, batch_size=16)
        )
    assert model.steps == 0  # refused before training


@pytest.mark.parametrize("dataset", ["tensor_dataset", "iterated"])
def test_label_key_picks_the_label_of_three_element_batches(
    make_trainer: MakeTrainer, dataset: str
) -> None:
    x, y, group = with_groups()
    data: Any = (
        TensorDataset(x, y, group)
        if dataset == "tensor_dataset"
        else Rows({"x": x, "y": y, "group": group})
    )
    weighting = ClassWeighting(label_key=1)
    model = AnyBatch()
    make_trainer(callbacks=[weighting]).fit(model, DataLoader(data, batch_size=16))
    assert weighting.counts == [90, 10]  # not the group ids' [50, 50]
    assert model.loss_fn.weight.tolist() == pytest.approx([100 / 180, 100 / 20])


def test_dict_batches_by_known_key_or_label_key(make_trainer: MakeTrainer) -> None:
    x, y, group = with_groups()
    known = ClassWeighting()
    loader = DataLoader(Rows({"x": x, "label": y, "group": group}, as_dict=True), batch_size=16)
    make_trainer(callbacks=[known]).fit(AnyBatch("label"), loader)
    assert known.counts == [90, 10]
    keyed = ClassWeighting(label_key="cls")
    loader = DataLoader(Rows({"x": x, "cls": y, "group": group}, as_dict=True), batch_size=16)
    make_trainer(callbacks=[keyed]).fit(AnyBatch("cls"), loader)
    assert keyed.counts == [90, 10]
    # Two label-like keys, or none: refused, naming label_key.
    for items in ({"x": x, "y": y, "target": group}, {"x": x, "cls": y}):
        loader = DataLoader(Rows(items, as_dict=True), batch_size=16)
        with pytest.raises(RecipeConfigError, match=r"label_key='<key of the label>'"):
            make_trainer(callbacks=[ClassWeighting()]).fit(AnyBatch("x"), loader)
    # A label_key that does not fit the batch is refused too.
    loader = DataLoader(Rows({"x": x, "cls": y}, as_dict=True), batch_size=16)
    with pytest.raises(RecipeConfigError, match=r"label_key=1 is an index"):
        make_trainer(callbacks=[ClassWeighting(label_key=1)]).fit(AnyBatch("cls"), loader)


def test_one_hot_and_probability_targets_count_their_argmax(make_trainer: MakeTrainer) -> None:
    x, y = toy()
    one_hot = nn.functional.one_hot(y, 2).float()
    smoothed = one_hot * 0.8 + 0.1  # label smoothing: rows still sum to 1
    for targets in (one_hot, smoothed):
        weighting = ClassWeighting()
        model = AnyBatch()
        make_trainer(callbacks=[weighting]).fit(model, DataLoader(Rows({"x": x, "y": targets})))
        assert weighting.counts == [90, 10]
        assert model.loss_fn.weight.tolist() == pytest.approx([100 / 180, 100 / 20])
    # From the dataset's attribute and from labels= as well.
    data = TensorDataset(x, smoothed)
    weighting = ClassWeighting()
    make_trainer(callbacks=[weighting]).fit(AnyBatch(), DataLoader(data, batch_size=16))
    assert weighting.counts == [90, 10]
    weighting = ClassWeighting(labels=smoothed.numpy())
    make_trainer(callbacks=[weighting]).fit(AnyBatch(), DataLoader(data, batch_size=16))
    assert weighting.counts == [90, 10]
    # Floating rows that are no distribution (multi-label 0/1 with a multi-class loss).
    multi = torch.ones(100, 2)
    with pytest.raises(RecipeConfigError, match=r"labels=.*one-hot or probability rows"):
        make_trainer(callbacks=[ClassWeighting()]).fit(
            AnyBatch(), DataLoader(Rows({"x": x, "y": multi}), batch_size=16)
        )


def test_targets_equal_to_ignore_index_are_not_counted(make_trainer: MakeTrainer) -> None:
    x, y = toy()
    y = y.clone()
    y[:20] = -100  # CrossEntropyLoss's default ignore_index
    weighting = ClassWeighting()
    make_trainer(callbacks=[weighting]).fit(
        AnyBatch(), DataLoader(Rows({"x": x, "y": y}), batch_size=16)
    )
    assert weighting.counts == [70, 10]


class TwoHeads(LightningModule):
    """Two losses, each weighted by its own ClassWeighting."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)
        self.loss_fn = nn.CrossEntropyLoss()
        self.criterion = nn.CrossEntropyLoss()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, group = batch
        out = self.layer(x)
        return self.loss_fn(out, y) + self.criterion(out, group)  # type: ignore[no-any-return]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_two_class_weightings_keep_separate_checkpoint_state(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    x, y = toy()
    group = torch.tensor([0] * 70 + [1] * 30)
    loader = DataLoader(TensorDataset(x, y, group), batch_size=16)

    def pair() -> list[ClassWeighting]:
        return [
            ClassWeighting(loss_attr="loss_fn", label_key=1),
            ClassWeighting(loss_attr="criterion", label_key=2),
        ]

    first = pair()
    model = TwoHeads()
    trainer = make_trainer(callbacks=first)
    trainer.fit(model, loader)
    assert [w.counts for w in first] == [[90, 10], [70, 30]]
    assert first[0].state_key != first[1].state_key
    ckpt = tmp_path / "two.ckpt"
    trainer.save_checkpoint(ckpt)
    resumed, fresh = pair(), TwoHeads()
    make_trainer(max_epochs=2, callbacks=resumed).fit(fresh, loader, ckpt_path=ckpt)
    assert [w.counts for w in resumed] == [[90, 10], [70, 30]]
    assert torch.equal(fresh.loss_fn.weight, model.loss_fn.weight)
    assert torch.equal(fresh.criterion.weight, model.criterion.weight)


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_a_checkpoint_keyed_by_the_class_name_still_resumes(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    x, y = toy()
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    weighting = ClassWeighting()
    trainer = make_trainer(callbacks=[weighting])
    trainer.fit(AnyBatch(), loader)
    ckpt = tmp_path / "old.ckpt"
    trainer.save_checkpoint(ckpt)
    checkpoint = torch.load(ckpt, weights_only=False)
    checkpoint["callbacks"] = {"ClassWeighting": checkpoint["callbacks"][weighting.state_key]}
    torch.save(checkpoint, ckpt)  # as written before state_key held the arguments
    resumed = ClassWeighting(labels=[0, 1] * 50)  # would count [50, 50]
    make_trainer(max_epochs=2, callbacks=[resumed]).fit(AnyBatch(), loader, ckpt_path=ckpt)
    assert resumed.counts == [90, 10]
