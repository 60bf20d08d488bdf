"""MixUp, CutMix, LabelSmoothing and ImageAugmentation in a real Trainer."""

import contextlib
import pickle
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from torch import Tensor, nn

from lightning_recipes._core.rng import reseed
from lightning_recipes.augmentation import CutMix, ImageAugmentation, LabelSmoothing, MixUp
from lightning_recipes.augmentation.mixing_augmentation import PLAN_BATCHES
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.errors import RecipeConfigError, RecipeWarning
from lightning_recipes.imbalance import ClassWeighting
from tests.registry import CrashAt, CrashError, assert_same, state_of

FIT = {
    "accelerator": "cpu",
    "max_epochs": 2,
    "limit_train_batches": 3,
    "limit_val_batches": 2,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "logger": False,
    "enable_checkpointing": False,
}


class ImageNet(LightningModule):
    """A user's small convnet on 1x8x8 digits that records what its steps saw."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10)
        )
        self.loss_fn = nn.CrossEntropyLoss()
        self.seen: list[dict[str, Tensor]] = []
        self.val_inputs: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = self.loss_fn(logits, y)
        self.seen.append(
            {
                "x": x.detach().clone(),
                "y": y.clone(),
                "logits": logits.detach(),
                "loss": loss.detach(),
            }
        )
        return loss  # type: ignore[no-any-return]

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.val_inputs.append(batch[0].clone())
        self.log("val_loss", self.loss_fn(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def digits() -> DigitsDataModule:
    return DigitsDataModule(batch_size=16, layout="image", imbalance={3: 0.2})


def run(
    callbacks: list[Callback], root: Path | None = None, **kwargs: Any
) -> tuple[Trainer, ImageNet]:
    seed_everything(0)
    model = ImageNet()
    trainer = Trainer(callbacks=callbacks, **{**FIT, **kwargs})
    trainer.fit(model, digits())
    return trainer, model


def clean_batches() -> list[tuple[Tensor, Tensor]]:
    _, model = run([])
    return [(s["x"], s["y"]) for s in model.seen]


def test_mixup_loss_is_the_interpolation_of_the_weighted_losses() -> None:
    clean = clean_batches()
    for order in ("weights first", "mixup first"):
        mix, weighting = MixUp(alpha=0.4, seed=3), ClassWeighting()
        callbacks: list[Callback] = (
            [weighting, mix] if order == "weights first" else [mix, weighting]
        )
        _, model = run(callbacks, max_epochs=1)
        weight = model.loss_fn.weight
        assert weight is not None
        assert weight[3] > 2 * weight[0]
        for (x, y), step in zip(clean, model.seen, strict=False):
            assert torch.equal(step["y"], y)  # hard labels reach training_step
            # Recover lam and the partner from the mixed inputs.
            diffs = [(lam, idx) for lam, idx in _candidates(x, step["x"])]
            assert diffs, "the inputs were not mixed"
            lam, index = diffs[0]
            want = lam * F.cross_entropy(step["logits"], y, weight=weight) + (
                1 - lam
            ) * F.cross_entropy(step["logits"], y[index], weight=weight)
            assert torch.allclose(step["loss"], want, atol=1e-5), order


def _candidates(x: Tensor, mixed: Tensor) -> list[tuple[float, Tensor]]:
    """(lam, partner index) such that mixed = lam x + (1 - lam) x[index] (searched)."""
    flat, target = x.flatten(1), mixed.flatten(1)
    found = []
    for i in range(1):
        for j in range(x.shape[0]):
            delta = flat[i] - flat[j]
            if delta.abs().sum() == 0:
                continue
            lam = float(((target[i] - flat[j]) @ delta) / (delta @ delta))
            if torch.allclose(lam * flat[i] + (1 - lam) * flat[j], target[i], atol=1e-4):
                index = torch.empty(x.shape[0], dtype=torch.long)
                for a in range(x.shape[0]):
                    for b in range(x.shape[0]):
                        if torch.allclose(
                            lam * flat[a] + (1 - lam) * flat[b], target[a], atol=1e-4
                        ):
                            index[a] = b
                            break
                found.append((lam, index))
    return found


def test_validation_and_the_global_rng_are_untouched() -> None:
    _plain_trainer, plain = run([])
    _, mixed = run(
        [MixUp(seed=1), CutMix(seed=2), ImageAugmentation(rotation=20, seed=3), LabelSmoothing(0.2)]
    )
    assert all(torch.equal(a, b) for a, b in zip(plain.val_inputs, mixed.val_inputs, strict=True))
    assert not torch.equal(plain.seen[0]["x"], mixed.seen[0]["x"])
    seed_everything(0)
    expected = torch.rand(2)
    seed_everything(0)
    MixUp(seed=1)  # construction draws nothing
    assert torch.equal(torch.rand(2), expected)


def test_global_rng_stream_after_fit_is_unchanged() -> None:
    run([])
    after_plain = torch.rand(4)
    run([MixUp(seed=1), ImageAugmentation(rotation=10, horizontal_flip=True, seed=2)])
    assert torch.equal(torch.rand(4), after_plain)


def test_label_smoothing_loss_matches_torch_and_validation_is_plain() -> None:
    _, model = run([LabelSmoothing(0.1)], max_epochs=1)
    for step in model.seen:
        want = F.cross_entropy(step["logits"], step["y"], label_smoothing=0.1)
        assert torch.equal(step["loss"], want)  # alone, unweighted: torch's own, bit for bit
    assert torch.equal(model.seen[0]["x"], clean_batches()[0][0])


def test_stop_at_epoch_switches_off() -> None:
    clean = clean_batches()
    trainer, model = run([MixUp(seed=0, stop_at_epoch=1)])
    first, second = model.seen[:3], model.seen[3:]
    assert all(not torch.equal(s["x"], x) for s, (x, _) in zip(first, clean[:3], strict=True))
    assert all(torch.equal(s["x"], x) for s, (x, _) in zip(second, clean[3:], strict=True))
    assert all(torch.allclose(s["loss"], F.cross_entropy(s["logits"], s["y"])) for s in second)
    summary = trainer.callbacks[0].run_summary()  # type: ignore[attr-defined]
    assert summary.facts["batches augmented"] == 3
    assert summary.facts["training batches seen"] == 6


def test_order_does_not_matter() -> None:
    def make() -> list[Callback]:
        return [
            ImageAugmentation(rotation=15, seed=1),
            MixUp(seed=2),
            CutMix(seed=3),
            LabelSmoothing(0.1),
        ]

    _, one = run(make())
    _, other = run(make()[::-1])
    assert_same(state_of(one), state_of(other))


def test_resume_replays_the_same_augmentations(tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    def callbacks() -> list[Callback]:
        return [
            ImageAugmentation(rotation=15, translate=0.1, seed=None),
            MixUp(seed=None),
            LabelSmoothing(0.1),
        ]

    args = {**FIT, "max_epochs": 3, "enable_checkpointing": True}

    def fit(root: Path, crash: int | None = None, ckpt: Path | None = None) -> ImageNet:
        seed_everything(0)
        model = ImageNet()
        extra: list[Callback] = [ModelCheckpoint(dirpath=root, save_last=True)]
        extra += [CrashAt(crash)] if crash is not None else []
        trainer = Trainer(callbacks=[*callbacks(), *extra], **{**args, "default_root_dir": root})
        seed_everything(
            7
        )  # the resumed process may be seeded differently: the callbacks keep theirs
        with contextlib.suppress(CrashError):
            trainer.fit(model, digits(), ckpt_path=ckpt)
        return model

    whole = fit(tmp_path / "a")
    fit(tmp_path / "b", crash=2)
    resumed = fit(tmp_path / "c", ckpt=tmp_path / "b" / "last.ckpt")
    assert_same(state_of(whole), state_of(resumed))
    assert all(
        torch.equal(a["x"], b["x"]) for a, b in zip(whole.seen[6:], resumed.seen, strict=True)
    )


def test_ranks_draw_differently() -> None:
    mix = MixUp(seed=5)
    mix._seed = 5
    draws = [mix._draw_plan(rank, (0, 0)).draws for rank in (0, 1, 0)]
    assert np.array_equal(draws[0], draws[2])
    assert not np.array_equal(draws[0], draws[1])


def test_a_blocks_draws_are_numpys_from_a_fresh_seed_sequence() -> None:
    """64 batches' draws from one generator seeded by (seed, callback, rank, epoch, block)."""
    mix = MixUp(alpha=0.4, seed=2**63 - 5)
    mix._seed = 2**63 - 5
    for rank, epoch, block in [(0, 0, 0), (1, 3, 17), (7, 120, 40_000), (0, 2**40, 3)]:
        fresh = np.random.default_rng(
            np.random.SeedSequence([mix._seed, mix._salt, rank, epoch, block])
        )
        plan = mix._draw_plan(rank, (epoch, block))
        assert np.array_equal(plan.draws[:, 0], fresh.random(PLAN_BATCHES))
        assert np.array_equal(plan.draws[:, 1], fresh.beta(0.4, 0.4, PLAN_BATCHES))
        assert np.array_equal(plan.draws[:, 2:], fresh.random((PLAN_BATCHES, 2)))
        assert plan.seed == int(fresh.integers(2**63))


def test_a_batchs_partners_depend_on_its_size_not_on_the_order_sizes_come_in() -> None:
    """The last, shorter batch of an epoch has its own permutations: a run resumed there
    draws the same as the run that got there through the full batches."""
    mix = MixUp(seed=3)
    mix._seed = 3
    cpu = torch.device("cpu")
    first, second = mix._draw_plan(0, (2, 1)), mix._draw_plan(0, (2, 1))
    full_then_short = [first.batch(5).partners(10, cpu), first.batch(6).partners(7, cpu)]
    short_then_full = [second.batch(6).partners(7, cpu), second.batch(5).partners(10, cpu)]
    assert torch.equal(full_then_short[0], short_then_full[1])
    assert torch.equal(full_then_short[1], short_then_full[0])
    assert sorted(full_then_short[1].tolist()) == list(range(7))
    rows = {tuple(first.batch(row).partners(10, cpu).tolist()) for row in range(PLAN_BATCHES)}
    assert len(rows) == PLAN_BATCHES  # a different permutation for every batch of the block


def test_reseed_matches_numpy_on_any_entropy() -> None:
    generator = np.random.default_rng()
    draw = random.Random(0)
    for _ in range(500):
        bits = (0, 1, 31, 32, 63, 64, 100)
        entropy = [draw.getrandbits(draw.choice(bits)) for _ in range(draw.randint(1, 7))]
        reseed(generator, entropy)
        fresh = np.random.default_rng(np.random.SeedSequence(entropy))
        assert generator.bit_generator.state == fresh.bit_generator.state, entropy


def test_a_loss_the_recipe_cannot_mix_is_an_error_naming_it() -> None:
    class Squared(ImageNet):
        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            x, y = batch
            return F.mse_loss(self(x).softmax(1), F.one_hot(y, 10).float())

    seed_everything(0)
    trainer = Trainer(callbacks=[MixUp()], **FIT)
    with pytest.raises(RecipeConfigError, match=r"found no training loss.*mse_loss"):
        trainer.fit(Squared(), digits())


def test_a_missing_loss_attribute_is_refused_at_setup() -> None:
    model = ImageNet()
    trainer = Trainer(callbacks=[CutMix(loss_attr="criterion")], **FIT)
    with pytest.raises(RecipeConfigError, match="loss_attr"):
        trainer.fit(model, digits())
    assert not model.seen  # before any training step


def test_flat_inputs_are_refused_by_cutmix() -> None:
    class Flat(ImageNet):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(64, 10)

    seed_everything(0)
    trainer = Trainer(callbacks=[CutMix()], **FIT)
    with pytest.raises(RecipeConfigError, match="input_key"):
        trainer.fit(Flat(), DigitsDataModule(batch_size=16))
    # Flat images are accepted with their shape, and stay flat.
    model = Flat()
    trainer = Trainer(
        callbacks=[
            CutMix(image_shape=(1, 8, 8)),
            ImageAugmentation(rotation=10, image_shape=(1, 8, 8)),
        ],
        **FIT,
    )
    trainer.fit(model, DigitsDataModule(batch_size=16))
    assert model.seen[0]["x"].shape == (16, 64)
    trainer = Trainer(callbacks=[CutMix(image_shape=(1, 4, 4))], **FIT)
    with pytest.raises(RecipeConfigError, match="image_shape"):
        trainer.fit(Flat(), DigitsDataModule(batch_size=16))


def test_stop_beyond_the_run_warns() -> None:
    with pytest.warns(RecipeWarning, match="never stops"):
        run([MixUp(stop_at_epoch=5)])


def test_hook_is_removed_after_fit_and_callbacks_pickle() -> None:
    callbacks: list[Callback] = [MixUp(), CutMix(), LabelSmoothing(), ImageAugmentation(shear=10)]
    _, model = run(callbacks)
    assert not model.loss_fn._forward_hooks  # removed at teardown
    assert torch._C._len_torch_function_stack() == 0  # the loss path's mode is gone
    for callback in callbacks:
        copy = pickle.loads(pickle.dumps(callback))
        assert copy.state_key == callback.state_key
    assert len({c.state_key for c in (MixUp(0.2), MixUp(0.4), MixUp(0.2, seed=1))}) == 3


def test_views_in_tuple_batches_are_refused() -> None:
    mix = MixUp()
    data = torch.randn(10, 4)
    with pytest.raises(RecipeConfigError, match="view"):
        mix.set_inputs((data[:4], torch.zeros(4)), torch.zeros(4, 4))
    batch = [data[:4], torch.zeros(4)]
    mix.set_inputs(batch, torch.zeros(4, 4))
    assert torch.equal(batch[0], torch.zeros(4, 4))
    assert data.abs().sum() > 0


def test_warnings_are_quiet_in_a_plain_run() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        run([MixUp(stop_at_epoch=1), ImageAugmentation(rotation=5)])


# ------------------------------------------------------------ bad inputs

BAD: list[tuple[type, dict[str, Any], str]] = [
    (MixUp, {"alpha": 0}, "alpha"),
    (MixUp, {"alpha": -1.0}, "alpha"),
    (MixUp, {"alpha": float("inf")}, "alpha"),
    (MixUp, {"alpha": True}, "alpha"),
    (MixUp, {"alpha": "0.4"}, "alpha"),
    (MixUp, {"p": 0.0}, "p"),
    (MixUp, {"p": 1.5}, "p"),
    (MixUp, {"seed": -1}, "seed"),
    (MixUp, {"seed": 1.5}, "seed"),
    (MixUp, {"stop_at_epoch": 0}, "stop_at_epoch"),
    (MixUp, {"stop_at_epoch": True}, "stop_at_epoch"),
    (MixUp, {"input_key": -1}, "input_key"),
    (MixUp, {"input_key": ""}, "input_key"),
    (MixUp, {"loss_attr": "not an identifier"}, "loss_attr"),
    (CutMix, {"alpha": 0.0}, "alpha"),
    (CutMix, {"alpha": None}, "alpha"),
    (CutMix, {"alpha": float("nan")}, "alpha"),
    (CutMix, {"p": -0.1}, "p"),
    (CutMix, {"p": "half"}, "p"),
    (CutMix, {"seed": 2**63}, "seed"),
    (CutMix, {"stop_at_epoch": -2}, "stop_at_epoch"),
    (CutMix, {"stop_at_epoch": 2.0}, "stop_at_epoch"),
    (CutMix, {"input_key": True}, "input_key"),
    (CutMix, {"input_key": 1.0}, "input_key"),
    (CutMix, {"loss_attr": 3}, "loss_attr"),
    (CutMix, {"image_shape": (8, 8)}, "image_shape"),
    (CutMix, {"image_shape": (1, 0, 8)}, "image_shape"),
    (LabelSmoothing, {"smoothing": 0.0}, "smoothing"),
    (LabelSmoothing, {"smoothing": 1.0}, "smoothing"),
    (LabelSmoothing, {"smoothing": -0.1}, "smoothing"),
    (LabelSmoothing, {"smoothing": True}, "smoothing"),
    (LabelSmoothing, {"smoothing": "0.1"}, "smoothing"),
    (LabelSmoothing, {"smoothing": float("nan")}, "smoothing"),
    (LabelSmoothing, {"stop_at_epoch": 0}, "stop_at_epoch"),
    (LabelSmoothing, {"stop_at_epoch": "3"}, "stop_at_epoch"),
    (LabelSmoothing, {"loss_attr": ""}, "loss_attr"),
    (LabelSmoothing, {"loss_attr": "a.b"}, "loss_attr"),
    (ImageAugmentation, {"rotation": -5}, "rotation"),
    (ImageAugmentation, {"rotation": 200}, "rotation"),
    (ImageAugmentation, {"rotation": 0}, "rotation"),  # nothing to do
    (ImageAugmentation, {"translate": 1.0}, "translate"),
    (ImageAugmentation, {"translate": (0.1,)}, "translate"),
    (ImageAugmentation, {"translate": -0.1}, "translate"),
    (ImageAugmentation, {"scale": (1.2, 0.8)}, "scale"),
    (ImageAugmentation, {"scale": (0.0, 1.0)}, "scale"),
    (ImageAugmentation, {"scale": 1.1}, "scale"),
    (ImageAugmentation, {"shear": 95}, "shear"),
    (ImageAugmentation, {"horizontal_flip": 1}, "horizontal_flip"),
    (ImageAugmentation, {"vertical_flip": "yes"}, "vertical_flip"),
    (ImageAugmentation, {"rotation": 5, "fill_mode": "wrap"}, "fill_mode"),
    (ImageAugmentation, {"rotation": 5, "fill_mode": "zeros"}, "fill_mode"),
    (ImageAugmentation, {"rotation": 5, "fill_value": float("inf")}, "fill_value"),
    (ImageAugmentation, {"rotation": 5, "fill_mode": "nearest", "fill_value": 1.0}, "fill_value"),
    (ImageAugmentation, {"rotation": 5, "p": 0}, "p"),
    (ImageAugmentation, {"rotation": 5, "seed": "0"}, "seed"),
    (ImageAugmentation, {"rotation": 5, "stop_at_epoch": 0}, "stop_at_epoch"),
    (ImageAugmentation, {"rotation": 5, "image_shape": 64}, "image_shape"),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "argument"),
    BAD,
    ids=[f"{c.__name__}-{a}-{i}" for i, (c, _, a) in enumerate(BAD)],
)
def test_bad_inputs_name_the_argument(cls: type, kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=rf"\b{argument}\b"):
        cls(**kwargs)


def _loss_mode_active() -> bool:
    from torch.overrides import _get_current_function_mode_stack

    from lightning_recipes._core.loss_path import _LossMode

    return any(isinstance(mode, _LossMode) for mode in _get_current_function_mode_stack())


@pytest.mark.parametrize("weighting_first", [False, True])
def test_augmentations_run_outside_the_loss_mode_and_the_step_inside(
    monkeypatch: pytest.MonkeyPatch, weighting_first: bool
) -> None:
    # The mode costs each torch call a trip through Python: the batch's augmentations
    # (MixUp's lerp, CutMix's paste, the image transforms) run before it is entered.
    from lightning_recipes.augmentation import mix_up as module

    during_mix: list[bool] = []
    real_mixup = module.mixup

    def recording_mixup(inputs: Tensor, index: Tensor, lam: float) -> Tensor:
        during_mix.append(_loss_mode_active())
        return real_mixup(inputs, index, lam)

    monkeypatch.setattr(module, "mixup", recording_mixup)
    during_step: list[bool] = []

    class Recorder(ImageNet):
        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            during_step.append(_loss_mode_active())
            return super().training_step(batch, batch_idx)

    seed_everything(0)
    callbacks: list[Callback] = [MixUp(0.4, seed=1), ClassWeighting()]
    trainer = Trainer(callbacks=callbacks[::-1] if weighting_first else callbacks, **FIT)
    trainer.fit(Recorder(), digits())
    assert during_mix == [False] * 6
    assert during_step == [True] * 6
    assert not _loss_mode_active()


def test_label_smoothing_builds_no_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("LabelSmoothing draws nothing: no generator per batch")

    monkeypatch.setattr(LabelSmoothing, "generator", refuse)
    _, model = run([LabelSmoothing(0.1)])
    assert len(model.seen) == 6


def test_the_old_module_path_still_works_with_a_deprecation_warning() -> None:
    from lightning_recipes.augmentation import callbacks as old

    with pytest.warns(DeprecationWarning, match=r"augmentation\.callbacks\.MixUp is deprecated"):
        assert old.MixUp is MixUp
    with pytest.warns(DeprecationWarning, match="from lightning_recipes.augmentation"):
        assert old.LabelSmoothing is LabelSmoothing
    with pytest.raises(AttributeError):
        old.Nothing  # noqa: B018
