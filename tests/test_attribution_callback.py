"""The Attribution callback in every Trainer stage, and its outputs."""

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.loggers import CSVLogger

from lightning_recipes import MissingExtraError, RecipeConfigError
from lightning_recipes.attribution import Attribution
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.modules import MLP, Classifier, SmallCNN

MakeTrainer = Callable[..., Trainer]


class ModeWatch(Callback):
    """Records the module's train/eval flags just before fit ends (before Attribution)."""

    def __init__(self) -> None:
        self.before: list[bool] = []

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.before = [m.training for m in pl_module.modules()]


def test_fit_validate_and_test_all_explain(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    seed_everything(0)
    attribution = Attribution(num_samples=16, every_n_epochs=1)
    watch = ModeWatch()
    model = Classifier(MLP(64, [32], dropout=0.3), num_classes=10)
    data = DigitsDataModule()
    trainer = make_trainer(
        max_epochs=2, limit_train_batches=3, callbacks=[watch, attribution],
        logger=CSVLogger(tmp_path),
    )  # fmt: skip
    trainer.fit(model, data)
    assert [m.training for m in model.modules()] == watch.before  # modes restored
    trainer.validate(model, data, verbose=False)  # inference mode on
    trainer.test(model, data, verbose=False)  # inference mode on
    assert set(attribution.results) == {"epoch0", "epoch1", "fit_end", "validate_end", "test_end"}
    folder = tmp_path / "lightning_logs" / "version_0" / "attribution"
    for when in attribution.results:
        saved = torch.load(folder / when / "attributions.pt")
        assert saved["attributions"].shape == (16, 64)
        assert (folder / when / "importance.csv").read_text().startswith("feature,all,class_")
    assert (folder.parent / "figures" / "attribution" / "fit_end" / "importance.png").exists()
    # The same inputs every time, so explanations are comparable across epochs.
    first = torch.load(folder / "epoch0" / "attributions.pt")["inputs"]
    assert torch.equal(first, torch.load(folder / "test_end" / "attributions.pt")["inputs"])


def test_explanations_are_deterministic_despite_dropout(make_trainer: MakeTrainer) -> None:
    seed_everything(0)
    attribution = Attribution(method="integrated_gradients", num_samples=8, at_fit_end=False)
    model = Classifier(MLP(64, [32], dropout=0.5), num_classes=10)
    data = DigitsDataModule()
    trainer = make_trainer(max_epochs=1, limit_train_batches=2, callbacks=[attribution])
    trainer.fit(model, data)
    trainer.test(model, data, verbose=False)
    first = attribution.results["test_end"].attributions
    trainer.test(model, data, verbose=False)
    assert torch.equal(first, attribution.results["test_end"].attributions)


def test_images_get_heatmaps_and_the_gap_is_warned(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    attribution = Attribution(method="integrated_gradients", num_samples=4,
                              method_kwargs={"n_steps": 2}, max_completeness_gap=1e-9)  # fmt: skip
    trainer = make_trainer(
        max_epochs=1, limit_train_batches=2, callbacks=[attribution], logger=CSVLogger(tmp_path)
    )
    with pytest.warns(UserWarning, match="completeness gap"):
        trainer.fit(Classifier(SmallCNN(), num_classes=10), DigitsDataModule(layout="image"))
    run = tmp_path / "lightning_logs" / "version_0"
    assert (run / "figures" / "attribution" / "fit_end" / "heatmaps.png").exists()
    assert "attribution/completeness_gap" in (run / "metrics.csv").read_text()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"method": "shap"}, "method"),
        ({"num_samples": 0}, "num_samples"),
        ({"baselines": "random"}, "baselines"),
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"max_completeness_gap": 0}, "max_completeness_gap"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(RecipeConfigError, match=name):
        Attribution(**kwargs)  # type: ignore[arg-type]


def test_missing_captum_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "captum", None)
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(MissingExtraError, match="attribution"):
        Attribution()


def test_attribution_never_changes_training(make_trainer: MakeTrainer) -> None:
    def train(callbacks: list[Callback]) -> dict[str, torch.Tensor]:
        seed_everything(0)
        model = Classifier(MLP(64, [32], dropout=0.5), num_classes=10)  # dropout: RNG matters
        trainer = make_trainer(max_epochs=3, limit_train_batches=3, callbacks=callbacks)
        trainer.fit(model, DigitsDataModule())
        return model.state_dict()

    plain = train([])
    explained = train([Attribution(num_samples=8, every_n_epochs=1, plot=False)])  # gradient_shap
    assert plain.keys() == explained.keys()
    assert all(torch.equal(plain[k], explained[k]) for k in plain)


class _Counting(LightningModule):
    """A module the library did not write; forward can return a dict or a tuple."""

    def __init__(self, returns: str = "tensor") -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10)
        )
        self.returns = returns
        self.steps = 0

    def forward(self, x: torch.Tensor) -> Any:
        logits = self.net(x)
        if self.returns == "dict":
            return {"logits": logits, "embedding": x}
        if self.returns == "tuple":
            return x.sum(dim=1), logits
        return logits

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.steps += 1
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.steps += 1

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_dict_and_tuple_models_explain_the_selected_output(make_trainer: MakeTrainer) -> None:
    for returns, output in (("dict", "logits"), ("tuple", 1)):
        attribution = Attribution(num_samples=8, every_n_epochs=1, output=output, plot=False)
        trainer = make_trainer(max_epochs=1, limit_train_batches=2, callbacks=[attribution])
        trainer.fit(_Counting(returns), DigitsDataModule())
        assert attribution.results["fit_end"].attributions.shape == (8, 64)


@pytest.mark.parametrize(
    ("returns", "kwargs", "trainer_kwargs", "argument"),
    [
        ("dict", {}, {}, "output"),
        ("dict", {"output": "probs"}, {}, "output"),
        ("tuple", {"output": 5}, {}, "output"),
        ("tensor", {"output": "logits"}, {}, "output"),
        ("tensor", {"inputs": torch.randn(8, 10)}, {}, "inputs"),
        ("tensor", {"baselines": torch.zeros(2, 10)}, {}, "baselines"),
        ("tensor", {"feature_names": ["a", "b"]}, {}, "feature_names"),
        ("tensor", {"method": "occlusion"}, {}, "sliding_window_shapes"),
        ("tensor", {}, {"limit_val_batches": 0}, "inputs"),  # nothing to take inputs from
    ],
)
def test_problems_are_found_before_the_first_training_step(
    make_trainer: MakeTrainer,
    returns: str,
    kwargs: dict[str, Any],
    trainer_kwargs: dict[str, Any],
    argument: str,
) -> None:
    model = _Counting(returns)
    attribution = Attribution(num_samples=8, every_n_epochs=1, plot=False, **kwargs)
    trainer = make_trainer(
        max_epochs=1, limit_train_batches=2, callbacks=[attribution], **trainer_kwargs
    )
    with pytest.raises(RecipeConfigError, match=f"Invalid {argument}="):
        trainer.fit(model, DigitsDataModule())
    assert model.steps == 0


def test_test_only_use_is_checked_before_the_first_test_batch(make_trainer: MakeTrainer) -> None:
    attribution = Attribution(num_samples=8, at_fit_end=False, plot=False)
    trainer = make_trainer(callbacks=[attribution])
    model = _Counting("dict")
    with pytest.raises(RecipeConfigError, match="Invalid output="):
        trainer.test(model, DigitsDataModule(), verbose=False)
    assert model.steps == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"method": "nope"}, "method"),
        ({"method": 42}, "method"),
        ({"num_samples": 2.5}, "num_samples"),
        ({"num_samples": True}, "num_samples"),
        ({"baselines": "abc"}, "baselines"),
        ({"baselines": 3}, "baselines"),
        ({"every_n_epochs": 1.5}, "every_n_epochs"),
        ({"every_n_epochs": -2}, "every_n_epochs"),
        ({"max_completeness_gap": "x"}, "max_completeness_gap"),
        ({"feature_names": []}, "feature_names"),
        ({"feature_names": "abc"}, "feature_names"),
        ({"feature_names": ["a", "a"]}, "feature_names"),
        ({"method_kwargs": {"nope": 1}}, "method_kwargs['nope']"),
        (
            {"method": "integrated_gradients", "method_kwargs": {"n_steps": 0}},
            "method_kwargs['n_steps']",
        ),
        ({"method_kwargs": "n_samples=5"}, "method_kwargs"),
        ({"inputs": torch.ones(5)}, "inputs"),
        ({"inputs": [1.0, 2.0]}, "inputs"),
        ({"inputs": torch.ones(4, 3), "feature_names": ["a", "b"]}, "feature_names"),
        ({"inputs": torch.ones(4, 3), "baselines": torch.zeros(2, 5)}, "baselines"),
        ({"output": 1.5}, "output"),
        ({"output": True}, "output"),
        ({"at_fit_end": "yes"}, "at_fit_end"),
        ({"plot": 1}, "plot"),
    ],
)
def test_more_bad_arguments(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(RecipeConfigError, match=f"Invalid {re.escape(name)}="):
        Attribution(**kwargs)  # type: ignore[arg-type]


def test_two_attributions_have_distinct_state_keys() -> None:
    assert Attribution().state_key != Attribution(method="saliency").state_key
    assert Attribution().state_key != Attribution(every_n_epochs=2).state_key
    assert Attribution().state_key != Attribution(output="logits").state_key
