"""The contract between recipes (docs/combining.md), rule by rule, on a user's module."""

import warnings
from pathlib import Path
from typing import Any

import pytest

from lightning_recipes import (
    ClassWeighting,
    EarlyStopping,
    Freezer,
    GradientMonitor,
    LRFinder,
    RecipeWarning,
)
from tests.registry import fit


def finder(**kwargs: Any) -> LRFinder:
    return LRFinder(num_steps=20, min_lr=1e-4, max_lr=1.0, plot=False, verbose=False, **kwargs)


def test_the_range_test_sweeps_the_weighted_loss_whatever_the_order(tmp_path: Path) -> None:
    curves = []
    runs = [(0, True), (1, True), (0, False), (1, False), (None, True)]
    for i, (order, functional) in enumerate(runs):
        lr_finder, weighting = finder(), ClassWeighting()
        callbacks = [lr_finder] if order is None else [lr_finder, weighting][:: 1 - 2 * order]
        args: dict[str, Any] = {"trainer_kwargs": {"max_epochs": 1}, "functional": functional}
        fit(callbacks, tmp_path / str(i), **args)
        curves.append(lr_finder.results[0].losses)
    # Whichever order, whether the module calls F.cross_entropy or self.loss_fn: one curve.
    assert curves[0] == curves[1] == curves[2] == curves[3]
    assert curves[0] != curves[4]  # and it is the weighted one


def test_the_start_test_sweeps_every_parameter_that_will_train(tmp_path: Path) -> None:
    curves = []
    for order in range(2):
        lr_finder, freezer = finder(), Freezer(unfreeze={1: 1, 2: 3})
        callbacks = [lr_finder, freezer] if order == 0 else [freezer, lr_finder]
        _, model = fit(callbacks, tmp_path / str(order), trainer_kwargs={"max_epochs": 3})
        total = sum(p.numel() for p in model.parameters())
        assert [r.epoch for r in lr_finder.results] == [0]
        assert lr_finder.results[0].trainable_params == total  # the frozen groups too
        curves.append(lr_finder.results[0].losses)
    assert curves[0] == curves[1]
    # What trains now only (the head): a different curve.
    head_only = finder(unfreezing="ignore")
    fit(
        [head_only, Freezer(unfreeze={1: 1, 2: 3})],
        tmp_path / "ignore",
        trainer_kwargs={"max_epochs": 1},
    )
    assert head_only.results[0].trainable_params < total
    assert head_only.results[0].losses != curves[0]


def test_rerun_tests_again_at_each_unfreeze_and_sweeps_what_trains(tmp_path: Path) -> None:
    for order, callbacks in enumerate(
        (
            [finder(unfreezing="rerun"), Freezer(unfreeze={1: 1, 2: 3})],
            [Freezer(unfreeze={1: 1, 2: 3}), finder(unfreezing="rerun")],
        )
    ):
        _trainer, model = fit(callbacks, tmp_path / str(order), trainer_kwargs={"max_epochs": 3})
        lr_finder = next(c for c in callbacks if isinstance(c, LRFinder))
        assert [r.epoch for r in lr_finder.results] == [0, 1, 2]
        shares = [r.trainable_params for r in lr_finder.results]
        total = sum(p.numel() for p in model.parameters())
        assert shares[0] is not None
        assert shares[0] < shares[1] < shares[2] == total
        if order == 0:
            first = [r.losses for r in lr_finder.results]
        else:
            assert [r.losses for r in lr_finder.results] == first


def test_a_frozen_backbone_raises_no_gradient_alarm(tmp_path: Path) -> None:
    monitor = GradientMonitor(log_every_n_steps=1, patience=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit([Freezer(unfreeze=None), monitor], tmp_path, trainer_kwargs={"max_epochs": 2})
    assert not [w for w in caught if issubclass(w.category, RecipeWarning)]
    assert monitor.frozen_groups


def test_the_discriminative_ratios_survive_the_chosen_rate(tmp_path: Path) -> None:
    lr_finder = LRFinder(num_steps=20, plot=False, verbose=False, apply_at_boundary=True)
    trainer, _ = fit(
        [lr_finder, Freezer(unfreeze={1: 3}, lr_decay=0.5)],
        tmp_path,
        trainer_kwargs={"max_epochs": 2},
    )
    assert all(r.applied for r in lr_finder.results)
    head, *groups = (group["lr"] for group in trainer.optimizers[0].param_groups)
    assert head == lr_finder.results[-1].chosen
    assert sorted(round(rate / head, 9) for rate in groups) == [0.125, 0.25, 0.5]


def test_early_stopping_waits_for_the_end_of_the_unfreeze_schedule(tmp_path: Path) -> None:
    stopped = []
    for wait in (True, False):
        # val_loss falls, so in "max" mode it never improves: patience runs out at once.
        stopper = EarlyStopping("val_loss", mode="max", patience=1, wait_for_unfreezing=wait)
        freezer = Freezer(unfreeze="gradual", every_n_epochs=2)  # 3 groups: epochs 2, 4, 6
        trainer, _ = fit(
            [stopper, freezer], tmp_path / str(wait), trainer_kwargs={"max_epochs": 10}
        )
        stopped.append((trainer.current_epoch, stopper.stopped_epoch, freezer.unfrozen))
        if wait:
            assert stopper.deferred_stops > 0
            assert stopper.patience_reset_at == 6
    assert stopped[0] == (7, 6, 3)  # stops once the last group has had its epoch
    # Lightning's rule: stops in the middle of the schedule, the last group never trained.
    assert stopped[1][1] < 6
    assert stopped[1][2] < 3


@pytest.mark.parametrize("bar", [True, False])
def test_waiting_loops_show_a_bar_that_follows_the_trainer(
    bar: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fit(
        [finder(), ClassWeighting(labels=None)],
        tmp_path,
        trainer_kwargs={"max_epochs": 1, "enable_progress_bar": bar},
    )
    err = capsys.readouterr().err
    assert ("LRFinder: range test" in err) is bar
