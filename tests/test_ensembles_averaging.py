"""WeightAverage: validation on live weights until the average starts, BN recomputed, resume."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor, nn

from lightning_recipes.data import DigitsDataModule
from lightning_recipes.ensembles import WeightAverage
from lightning_recipes.errors import RecipeConfigError, RecipeWarning


class BNNet(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


class ValLosses(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self.losses.append(float(trainer.callback_metrics["val_loss"]))


def _fit(make_trainer: Callable[..., Trainer], callbacks: list[Callback], **kw: Any) -> BNNet:
    seed_everything(0)
    model = BNNet()
    ckpt = kw.pop("ckpt_path", None)
    trainer = make_trainer(max_epochs=kw.pop("max_epochs", 3), callbacks=callbacks,
                           num_sanity_val_steps=0, **kw)  # fmt: skip
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=64), ckpt_path=ckpt)
    return model


def test_validates_on_live_weights_until_the_average_starts(
    make_trainer: Callable[..., Trainer],
) -> None:
    plain, averaged = ValLosses(), ValLosses()
    _fit(make_trainer, [plain])
    _fit(make_trainer, [WeightAverage("ema", decay=0.9, start_epoch=2), averaged])
    # Epochs 0 and 1: no average yet, validation sees the same live weights as without it.
    assert averaged.losses[:2] == plain.losses[:2]
    assert averaged.losses[2] != plain.losses[2]


def test_swa_recomputes_batchnorm_statistics_of_the_average(
    make_trainer: Callable[..., Trainer],
) -> None:
    average = WeightAverage("swa", start_epoch=1)
    model = _fit(make_trainer, [average])
    assert average.bn_updated
    assert average.run_summary().facts["BatchNorm statistics recomputed"] is True
    # The statistics are those of the averaged weights on the training data (up to
    # update_bn averaging batch statistics over batches of unequal size).
    data = DigitsDataModule(batch_size=64)
    data.setup("fit")
    x = torch.cat([batch[0] for batch in data.train_dataloader()])
    with torch.no_grad():
        h = model.net[0](x)
    bn = model.net[1]
    torch.testing.assert_close(bn.running_mean, h.mean(0), atol=0.01, rtol=0.01)
    torch.testing.assert_close(bn.running_var, h.var(0), atol=0.05, rtol=0.05)


def test_an_average_that_never_started_keeps_the_live_weights(
    make_trainer: Callable[..., Trainer],
) -> None:
    plain = _fit(make_trainer, [], max_epochs=2)
    with pytest.warns(RecipeWarning, match="never updated"):
        kept = _fit(make_trainer, [WeightAverage("swa", start_epoch=5)], max_epochs=2)
    for a, b in zip(plain.state_dict().values(), kept.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_resumed_swa_equals_an_uninterrupted_run(
    make_trainer: Callable[..., Trainer], tmp_path: Path
) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    full = _fit(make_trainer, [WeightAverage("swa"), checkpoint], max_epochs=4,
                enable_checkpointing=True)  # fmt: skip
    ckpt = next((tmp_path / "ckpt").glob("epoch=1-*.ckpt"))
    resumed = _fit(make_trainer, [WeightAverage("swa")], max_epochs=4, ckpt_path=ckpt)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


BAD: list[tuple[dict[str, Any], str]] = [
    ({"kind": "mean"}, "kind"),
    ({"kind": None}, "kind"),
    ({"decay": 0.0}, "decay"),
    ({"decay": 1.0}, "decay"),
    ({"decay": -0.5}, "decay"),
    ({"decay": float("nan")}, "decay"),
    ({"decay": True}, "decay"),
    ({"start_epoch": -1}, "start_epoch"),
    ({"start_epoch": 1.5}, "start_epoch"),
    ({"start_epoch": True}, "start_epoch"),
    ({"update_bn": "yes"}, "update_bn"),
]


@pytest.mark.parametrize(("kwargs", "argument"), BAD)
def test_weight_average_bad_inputs(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=argument):
        WeightAverage(**kwargs)


def test_pickles_and_deepcopies_with_ema() -> None:
    import copy
    import pickle

    callback = WeightAverage("ema", decay=0.9)
    for clone in (copy.deepcopy(callback), pickle.loads(pickle.dumps(callback))):
        assert clone.state_key == callback.state_key
