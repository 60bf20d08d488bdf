"""MNIST-1D: the paper's generator and split, the shared options, the transfer split, its CNN."""

import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer, seed_everything

from lightning_recipes import (
    Classifier,
    MissingExtraError,
    Mnist1dCNN,
    Mnist1dDataModule,
    RecipeConfigError,
)
from lightning_recipes.data import LabeledTensorDataset, class_counts, generate_mnist1d
from lightning_recipes.data.mnist1d import _generate
from lightning_recipes.runner import RecipesCLI

ROOT = Path(__file__).resolve().parents[1]
N = 600  # 60 signals per class: 480 train (generator's), 120 test


def _setup(**kwargs: object) -> Mnist1dDataModule:
    dm = Mnist1dDataModule(**{"num_samples": N, **kwargs})  # type: ignore[arg-type]
    dm.setup("fit")
    return dm


def _rows(dataset: LabeledTensorDataset | None) -> set[bytes]:
    assert dataset is not None
    return {row.numpy().tobytes() for row in dataset.features}


def _counts(dataset: LabeledTensorDataset | None, num_classes: int = 10) -> np.ndarray:
    assert dataset is not None
    return class_counts(dataset.targets.numpy(), num_classes)


def test_the_paper_split_is_4000_by_1000_and_the_generator_leaves_global_rngs_alone() -> None:
    random.seed(1)
    np.random.seed(1)
    expected = (random.random(), np.random.rand())
    random.seed(1)
    np.random.seed(1)
    _generate.cache_clear()
    x, y, x_test, y_test = generate_mnist1d()  # the paper's defaults: 5000 signals, seed 42
    assert (random.random(), np.random.rand()) == expected  # make_dataset seeds both globally
    assert x.shape == (4000, 40)
    assert x_test.shape == (1000, 40)
    assert y.shape == (4000,)
    assert y_test.shape == (1000,)
    assert sorted(set(y.tolist())) == list(range(10))
    assert abs(float(np.concatenate([x, x_test]).std()) - 1.0) < 1e-3
    x[0, 0] = 99.0  # a copy: the cache stays as generated
    assert generate_mnist1d()[0][0, 0] != 99.0
    dm = Mnist1dDataModule(val_fraction=0.0)
    dm.setup("fit")
    assert dm.val_dataset is None
    assert dm.val_dataloader() == []
    assert dm.train_dataset is not None
    assert dm.test_dataset is not None
    assert torch.equal(dm.train_dataset.targets, torch.as_tensor(y))
    assert torch.equal(dm.test_dataset.features, torch.as_tensor(x_test))


def test_splits_are_disjoint_complete_stratified_and_set_by_seed() -> None:
    dm = _setup(val_fraction=0.25, seed=3)
    x, y, x_test, _ = generate_mnist1d(N)
    train, val, test = (_rows(d) for d in (dm.train_dataset, dm.val_dataset, dm.test_dataset))
    assert not train & val
    assert not train & test
    assert not val & test
    assert train | val == {row.tobytes() for row in x}
    assert test == {row.tobytes() for row in x_test}
    pool = class_counts(y, 10)
    assert np.all(np.abs(_counts(dm.val_dataset) - 0.25 * pool) < 1.0)
    again, other = _setup(val_fraction=0.25, seed=3), _setup(val_fraction=0.25, seed=4)
    assert _rows(again.val_dataset) == val
    assert _rows(other.val_dataset) != val
    assert _rows(other.test_dataset) == test  # the test split is the generator's, whatever seed
    new_data = _setup(val_fraction=0.25, seed=3, data_seed=7)
    assert _rows(new_data.test_dataset) != test


def test_layouts_and_labels_exposed_for_class_counting() -> None:
    flat, signal = _setup(batch_size=8), _setup(batch_size=8, layout="signal")
    assert flat.input_shape == (40,)
    assert signal.input_shape == (1, 40)
    xf, yf = next(iter(flat.train_dataloader()))
    xs, ys = next(iter(signal.train_dataloader()))
    assert xf.shape == (8, 40)
    assert xs.shape == (8, 1, 40)
    assert xf.dtype == torch.float32
    assert yf.dtype == torch.long
    assert torch.equal(xs.flatten(1), xf)
    assert torch.equal(ys, yf)
    assert flat.train_dataset is not None
    assert flat.train_dataset.targets.shape == (len(flat.train_dataset),)


def test_imbalance_shrinks_the_training_split_only() -> None:
    balanced, skewed = _setup(), _setup(imbalance={3: 0.1, 8: 0.0})
    before, after = _counts(balanced.train_dataset), _counts(skewed.train_dataset)
    assert after[3] == round(0.1 * before[3])
    assert after[8] == 0
    assert np.array_equal(np.delete(after, [3, 8]), np.delete(before, [3, 8]))
    for split in ("val_dataset", "test_dataset"):
        assert _rows(getattr(skewed, split)) == _rows(getattr(balanced, split))


def test_folds_partition_the_training_pool_and_keep_the_test_split() -> None:
    plain = _setup(val_fraction=0.2)
    pool = _rows(plain.train_dataset) | _rows(plain.val_dataset)
    vals = []
    for fold in range(3):
        dm = _setup(num_folds=3, fold=fold, scaler="standard")
        train, val = _rows(dm.train_dataset), _rows(dm.val_dataset)
        assert not train & val
        vals.append(val)
        assert dm.fitted_scaler is not None
        assert dm.train_dataset is not None
        assert torch.allclose(dm.train_dataset.features.mean(0), torch.zeros(40), atol=1e-5)
    assert sum(len(v) for v in vals) == len(pool)
    raw = [_setup(num_folds=3, fold=fold) for fold in range(3)]
    assert set().union(*(_rows(dm.val_dataset) for dm in raw)) == pool
    assert all(_rows(dm.test_dataset) == _rows(plain.test_dataset) for dm in raw)


def test_transfer_split_relabels_the_chosen_classes_and_keeps_k_shots() -> None:
    full = _setup(val_fraction=0.2, seed=1)
    pretrain = _setup(val_fraction=0.2, seed=1, classes=[0, 1, 2, 3, 4])
    finetune = _setup(val_fraction=0.2, seed=1, classes=[9, 5, 6, 7, 8], shots_per_class=3)
    assert pretrain.num_classes == finetune.num_classes == 5
    assert finetune.classes == (9, 5, 6, 7, 8)
    assert _counts(finetune.train_dataset, 5).tolist() == [3] * 5
    assert _rows(finetune.train_dataset) <= _rows(full.train_dataset)
    # Validation and test keep every signal of the served classes, relabelled in order.
    assert full.test_dataset is not None
    assert finetune.test_dataset is not None
    digits = full.test_dataset.targets
    served = torch.isin(digits, torch.tensor([9, 5, 6, 7, 8]))
    assert len(finetune.test_dataset) == int(served.sum())
    assert _rows(finetune.test_dataset) == {
        row.numpy().tobytes() for row in full.test_dataset.features[served]
    }
    nines = {row.numpy().tobytes() for row in full.test_dataset.features[digits == 9]}
    assert nines == {
        row.numpy().tobytes()
        for row in finetune.test_dataset.features[finetune.test_dataset.targets == 0]
    }
    assert not _rows(pretrain.test_dataset) & _rows(finetune.test_dataset)
    assert _counts(pretrain.val_dataset, 5).tolist() == _counts(full.val_dataset)[:5].tolist()
    # The shots are chosen with the seed.
    assert _rows(_setup(classes=[5, 6], shots_per_class=3, seed=1).train_dataset) != _rows(
        _setup(classes=[5, 6], shots_per_class=3, seed=2).train_dataset
    )


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"num_samples": 95}, "num_samples"),
        ({"num_samples": 1005}, "num_samples"),
        ({"data_seed": -1}, "data_seed"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"layout": "image"}, "layout"),
        ({"classes": [3]}, "classes"),
        ({"classes": [3, 3]}, "classes"),
        ({"classes": [3, 10]}, "classes"),
        ({"classes": "35"}, "classes"),
        ({"shots_per_class": 0}, "shots_per_class"),
        ({"shots_per_class": 2, "imbalance": {1: 0.5}}, "shots_per_class"),
        ({"classes": [5, 6], "imbalance": {2: 0.5}}, "imbalance"),
        ({"fold_kind": "grouped", "num_folds": 3}, "fold_kind"),
        ({"fold": 1}, "fold"),
        ({"scaler": "minmax"}, "scaler"),
    ],
)
def test_bad_arguments_fail_at_construction_naming_the_argument(
    kwargs: dict[str, object], argument: str
) -> None:
    with pytest.raises(RecipeConfigError, match=rf"\b{argument}\b"):
        Mnist1dDataModule(**kwargs)  # type: ignore[arg-type]


def test_without_the_package_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    dm = Mnist1dDataModule(num_samples=110, data_seed=1)  # constructing needs no package
    with pytest.raises(MissingExtraError, match=r"mnist1d.*lightning-recipes\[data\]"):
        dm.setup("fit")


def test_too_many_shots_fail_at_setup_naming_the_class() -> None:
    dm = Mnist1dDataModule(num_samples=N, shots_per_class=1000)
    with pytest.raises(RecipeConfigError, match=r"shots_per_class.*Class 0 \(digit 0\)"):
        dm.setup("fit")


def test_cnn_is_the_papers_and_accepts_both_layouts() -> None:
    net = Mnist1dCNN()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (1, 25, (5,), (2,), (1,)),
        (25, 25, (3,), (2,), (1,)),
        (25, 25, (3,), (2,), (1,)),
    ]
    assert net.out_features == 125
    x = torch.randn(4, 40)
    assert torch.equal(net(x), net(x.unsqueeze(1)))
    model = Classifier(net, num_classes=10)
    assert sum(p.numel() for p in model.parameters()) == 5210
    assert Mnist1dCNN(length=64, channels=8, dropout=0.1)(torch.zeros(2, 1, 64)).shape == (2, 64)
    for kwargs, argument in (({"length": 2}, "length"), ({"channels": 0}, "channels")):
        with pytest.raises(RecipeConfigError, match=argument):
            Mnist1dCNN(**kwargs)  # type: ignore[arg-type]


def test_classifier_trains_on_the_cnn_with_a_trainer(tmp_path: Path) -> None:
    seed_everything(0, verbose=False)
    dm = Mnist1dDataModule(num_samples=N, batch_size=50, layout="signal")
    model = Classifier(Mnist1dCNN(), num_classes=10, lr=1e-2, optimizer="adam")
    trainer = Trainer(
        max_steps=15,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    dm.setup("fit")
    assert dm.val_dataset is not None
    x, y = dm.val_dataset.features, dm.val_dataset.targets
    before = torch.nn.functional.cross_entropy(model(x), y).item()
    trainer.fit(model, datamodule=dm)
    after = torch.nn.functional.cross_entropy(model(x), y).item()
    assert after < before


def test_the_example_config_trains_the_cnn_on_a_transfer_split(tmp_path: Path) -> None:
    config = ROOT / "examples" / "configs" / "mnist1d.yaml"
    args = ["fit", "-c", str(config), "--trainer.max_steps=3", "--trainer.logger=false"]
    args += [f"--trainer.default_root_dir={tmp_path}", "--trainer.enable_progress_bar=false"]
    args += ["--data.num_samples=200", "--data.classes=[5, 6, 7, 8, 9]"]
    args += ["--data.shots_per_class=2", "--model.num_classes=5"]
    cli = RecipesCLI(args=args)
    assert isinstance(cli.model, Classifier)
    assert isinstance(cli.model.backbone, Mnist1dCNN)
    assert isinstance(cli.datamodule, Mnist1dDataModule)
    assert cli.datamodule.classes == (5, 6, 7, 8, 9)
    assert cli.datamodule.layout == "signal"
    assert cli.trainer.global_step == 3
