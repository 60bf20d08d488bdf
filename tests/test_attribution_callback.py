"""The Attribution callback in every Trainer stage, and its outputs."""

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.loggers import CSVLogger

from lightning_recipes import MissingExtraError, RecipeConfigError
from lightning_recipes.attribution import Attribution
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.modules import Classifier, mlp, small_cnn

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
    model = Classifier(mlp(64, [32], dropout=0.3), num_classes=10)
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
    model = Classifier(mlp(64, [32], dropout=0.5), num_classes=10)
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
        trainer.fit(Classifier(small_cnn(), num_classes=10), DigitsDataModule(layout="image"))
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
