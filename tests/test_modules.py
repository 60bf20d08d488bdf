"""Model builders and the Classifier: options do what they say; the Classifier learns."""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from lightning_recipes import RecipeConfigError
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.modules import MLP, Classifier, SmallCNN, build_optimizer, init_weights


@pytest.mark.parametrize(
    ("activation", "kind"),
    [("relu", nn.ReLU), ("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid), ("gelu", nn.GELU)],
)
def test_mlp_activation_dropout_and_batch_norm(activation: str, kind: type) -> None:
    net = MLP(10, hidden=(8, 6), activation=activation, dropout=0.3, batch_norm=True)  # type: ignore[arg-type]
    acts = [m for m in net if isinstance(m, kind)]
    assert len(acts) == 2
    assert acts[0] is not acts[1]
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.3 for m in net) == 2
    assert sum(isinstance(m, nn.BatchNorm1d) for m in net) == 2
    assert all(m.bias is None for m in net if isinstance(m, nn.Linear))  # BN makes bias redundant
    assert net(torch.randn(4, 10)).shape == (4, 6)
    assert net.out_features == 6


def test_mlp_plain_has_no_dropout_or_batch_norm() -> None:
    net = MLP(10, hidden=(8,))
    assert [type(m) for m in net] == [nn.Linear, nn.ReLU]


def test_init_schemes_set_the_expected_weight_scale() -> None:
    torch.manual_seed(0)
    fan_in = 400
    he = MLP(fan_in, hidden=(400,), activation="relu", init="he")[0].weight
    xavier = MLP(fan_in, hidden=(400,), activation="tanh", init="xavier")[0].weight
    auto_tanh = MLP(fan_in, hidden=(400,), activation="tanh", init="auto")[0].weight
    default = MLP(fan_in, hidden=(400,), init="torch")[0].weight
    assert he.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.03)
    gain = nn.init.calculate_gain("tanh")
    assert xavier.std().item() == pytest.approx(gain * (2 / (fan_in + 400)) ** 0.5, rel=0.03)
    assert auto_tanh.std().item() == pytest.approx(xavier.std().item(), rel=0.03)
    assert default.std().item() == pytest.approx((1 / (3 * fan_in)) ** 0.5, rel=0.03)
    assert MLP(4, hidden=(3,), init="he")[0].bias.abs().sum() == 0


def test_small_cnn_shapes_and_options() -> None:
    net = SmallCNN(
        in_channels=3, channels=(4, 8, 16), activation="gelu", dropout=0.2, image_size=28
    )
    assert net(torch.randn(2, 3, 28, 28)).shape == (2, 16)
    assert sum(isinstance(m, nn.MaxPool2d) for m in net) == 3
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net) == 3
    tiny = SmallCNN(channels=(4, 4, 4), image_size=8)  # pools only while the image is > 2x2
    assert sum(isinstance(m, nn.MaxPool2d) for m in tiny) == 2
    assert tiny(torch.randn(1, 1, 8, 8)).shape == (1, 4)


def test_classifier_reaches_95_percent_on_digits(make_trainer: Callable[..., Trainer]) -> None:
    seed_everything(0)
    data = DigitsDataModule(batch_size=64)
    model = Classifier(MLP(64, hidden=(128, 64)), num_classes=10, lr=3e-3, scheduler="onecycle")
    trainer = make_trainer(max_epochs=12)
    trainer.fit(model, datamodule=data)
    metrics = trainer.callback_metrics
    for name in (
        "train_loss",
        "train_loss_epoch",
        "train_acc",
        "val_loss",
        "val_acc",
        "val_macro_f1",
    ):
        assert name in metrics, name
    (tested,) = trainer.test(model, datamodule=data, verbose=False)
    assert tested["test_acc"] >= 0.95
    assert tested["test_macro_f1"] >= 0.95
    assert tested["test_loss"] < 0.3


def test_classifier_losses_are_exact_sample_means(make_trainer: Callable[..., Trainer]) -> None:
    data = DigitsDataModule(batch_size=50)  # 268 test samples: the last batch is smaller
    model = Classifier(MLP(64, hidden=(16,)), num_classes=10)
    (tested,) = make_trainer().test(model, datamodule=data, verbose=False)
    assert data.test_dataset is not None
    with torch.no_grad():
        logits = model(data.test_dataset.features)
    expected = nn.functional.cross_entropy(logits, data.test_dataset.targets).item()
    accuracy = (logits.argmax(-1) == data.test_dataset.targets).float().mean().item()
    assert tested["test_loss"] == pytest.approx(expected, rel=1e-5)
    assert tested["test_acc"] == pytest.approx(accuracy, abs=1e-6)


def test_classifier_uses_its_loss_fn_and_lr(make_trainer: Callable[..., Trainer]) -> None:
    data = DigitsDataModule(batch_size=64)
    weights = torch.ones(10)
    weights[0] = 50.0
    model = Classifier(MLP(64, hidden=(16,)), num_classes=10, loss_fn=nn.CrossEntropyLoss(weights))
    (plain,) = make_trainer().validate(Classifier(MLP(64, hidden=(16,)), 10), data, verbose=False)
    (weighted,) = make_trainer().validate(model, data, verbose=False)
    assert weighted["val_loss"] != pytest.approx(plain["val_loss"], rel=1e-3)
    model.lr = 0.123  # an LR finder sets this attribute; the optimizer must follow
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["lr"] == 0.123


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle", "multistep", "plateau"])
def test_schedulers_change_the_lr(scheduler: str, make_trainer: Callable[..., Trainer]) -> None:
    data = DigitsDataModule(batch_size=128)
    model = Classifier(MLP(64, hidden=(8,)), 10, lr=0.01, optimizer="sgd", scheduler=scheduler)  # type: ignore[arg-type]
    trainer = make_trainer(max_epochs=4)
    trainer.fit(model, datamodule=data)
    final_lr = trainer.optimizers[0].param_groups[0]["lr"]
    if scheduler == "plateau":  # patience 5 > 4 epochs: no reduction yet, but it is wired
        assert trainer.lr_scheduler_configs[0].monitor == "val_loss"
    else:
        assert final_lr < 0.01


def test_predict_returns_probabilities(make_trainer: Callable[..., Trainer]) -> None:
    data = DigitsDataModule(batch_size=100)
    model = Classifier(MLP(64, hidden=(8,)), num_classes=10)
    batches = make_trainer().predict(model, datamodule=data)
    assert batches is not None
    probs = torch.cat(batches)  # type: ignore[arg-type]
    assert probs.shape == (len(data.test_dataset or []), 10)
    assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[0]), atol=1e-5)


def test_checkpoint_round_trip(tmp_path: Path, make_trainer: Callable[..., Trainer]) -> None:
    data = DigitsDataModule(batch_size=64)
    model = Classifier(MLP(64, hidden=(16,)), num_classes=10, lr=0.02, optimizer="sgd")
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    make_trainer(max_epochs=1, enable_checkpointing=True, callbacks=[checkpoint]).fit(model, data)
    restored = Classifier.load_from_checkpoint(
        checkpoint.last_model_path, backbone=MLP(64, hidden=(16,))
    )
    assert restored.lr == 0.02
    assert restored.optimizer_name == "sgd"
    x = torch.randn(3, 64)
    model.eval()
    assert torch.equal(restored(x), model(x))


def test_build_optimizer_names() -> None:
    params = list(nn.Linear(2, 2).parameters())
    expected = {
        "adamw": torch.optim.AdamW,
        "adam": torch.optim.Adam,
        "sgd": torch.optim.SGD,
        "rmsprop": torch.optim.RMSprop,
    }
    for name, kind in expected.items():
        assert isinstance(build_optimizer(name, params, lr=0.1), kind)


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: MLP(64, activation="swish"), "activation"),  # type: ignore[arg-type]
        (lambda: MLP(64, dropout=-0.1), "dropout"),
        (lambda: MLP(64, dropout=1.0), "dropout"),
        (lambda: MLP(64, hidden=()), "hidden"),
        (lambda: MLP(64, hidden=(8, 0)), "hidden"),
        (lambda: MLP(0), "in_features"),
        (lambda: MLP(64, init="lecun"), "init"),  # type: ignore[arg-type]
        (lambda: SmallCNN(channels=()), "channels"),
        (lambda: SmallCNN(activation="elu"), "activation"),  # type: ignore[arg-type]
        (lambda: Classifier(MLP(4), num_classes=10, optimizer="lbfgs"), "optimizer"),  # type: ignore[arg-type]
        (lambda: Classifier(MLP(4), num_classes=10, scheduler="poly"), "scheduler"),  # type: ignore[arg-type]
        (lambda: Classifier(MLP(4), num_classes=1), "num_classes"),
        (lambda: Classifier(MLP(4), num_classes=3, lr=0.0), "lr"),
        (lambda: Classifier(MLP(4), num_classes=3, weight_decay=-1.0), "weight_decay"),
        (lambda: Classifier(nn.Sequential(nn.Linear(4, 5)), num_classes=3), "in_features"),
        (lambda: Classifier(MLP(4), num_classes=3, loss_fn=print), "loss_fn"),  # type: ignore[arg-type]
        (lambda: init_weights(nn.Linear(2, 2), "lecun", "relu"), "init"),  # type: ignore[arg-type]
        (lambda: MLP(64, init="lsuv"), "init"),  # needs data: WeightInit("lsuv")
    ],
)
def test_bad_arguments_raise_recipe_config_error(build: object, argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=f"Invalid {argument}=") as info:
        build()  # type: ignore[operator]
    assert "." in str(info.value).split("=", 1)[1]  # the value is followed by the fix


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(RecipeConfigError, match="'relu', 'tanh', 'sigmoid', 'gelu'"):
        MLP(4, activation="swish")  # type: ignore[arg-type]
    assert Classifier(nn.Sequential(nn.Linear(4, 5)), num_classes=3, in_features=5)(
        torch.zeros(1, 4)
    ).shape == (1, 3)
