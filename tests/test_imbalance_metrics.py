"""Imbalance metrics against scikit-learn / imbalanced-learn, and the test-end report."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from imblearn.metrics import geometric_mean_score
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger
from sklearn.metrics import balanced_accuracy_score, confusion_matrix

from lightning_recipes import RecipeConfigError
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.imbalance.imbalance_report import ImbalanceReport
from lightning_recipes.imbalance.metrics import (
    BalancedAccuracy,
    GeometricMeanRecall,
    PerClassRecall,
    labels_from_confusion,
)
from lightning_recipes.modules import MLP, Classifier

pairs = st.integers(3, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
    )
)


@settings(max_examples=100, deadline=None)
@given(pair=pairs, chunks=st.integers(1, 4))
def test_metrics_match_sklearn_and_imblearn(pair: tuple[list[int], list[int]], chunks: int) -> None:
    y_true, y_pred = (np.array(v) for v in pair)
    gmean, balanced = GeometricMeanRecall(num_classes=4), BalancedAccuracy(num_classes=4)
    for part in np.array_split(np.arange(len(y_true)), chunks):  # batched updates add up
        for metric in (gmean, balanced):
            metric.update(torch.tensor(y_pred[part]), torch.tensor(y_true[part]))
    present = np.unique(y_true)
    expected_gmean = geometric_mean_score(y_true, y_pred, labels=present, average="multiclass")
    assert float(gmean.compute()) == pytest.approx(expected_gmean, abs=1e-9)
    expected_balanced = balanced_accuracy_score(y_true, y_pred)
    assert float(balanced.compute()) == pytest.approx(expected_balanced, abs=1e-9)


def test_scores_are_accepted_as_predictions() -> None:
    metric = PerClassRecall(num_classes=3)
    metric.update(torch.tensor([[5.0, 0, 0], [0, 0, 9.0]]), torch.tensor([0, 1]))
    assert metric.compute().tolist()[:2] == [1.0, 0.0]


@settings(max_examples=50, deadline=None)
@given(pair=pairs)
def test_labels_from_confusion_rebuild_the_matrix(pair: tuple[list[int], list[int]]) -> None:
    matrix = confusion_matrix(pair[0], pair[1], labels=range(4))
    y_true, y_pred = labels_from_confusion(matrix)
    assert np.array_equal(confusion_matrix(y_true, y_pred, labels=range(4)), matrix)


def test_report_is_written_at_test_end(
    make_trainer: Callable[..., Trainer], tmp_path: Path
) -> None:
    report = ImbalanceReport(num_classes=10)
    trainer = make_trainer(
        max_epochs=2, limit_val_batches=0, callbacks=[report], logger=CSVLogger(tmp_path)
    )
    model = Classifier(MLP(64, [32]), num_classes=10, lr=3e-3)
    data = DigitsDataModule(imbalance={3: 0.05})
    trainer.fit(model, data)
    trainer.test(model, data, verbose=False)
    assert report.confusion is not None
    assert report.confusion.sum() == len(data.test_dataset)  # type: ignore[arg-type]
    assert report.path is not None
    text = report.path.read_text()
    assert "geo" in text  # imbalanced-learn's geometric-mean column
    assert "spe" in text  # specificity
    assert (report.path.parent / "figures" / "imbalance" / "recall.png").exists()


def test_report_without_a_run_dir_stays_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no logger and no default_root_dir: nothing in the cwd
    report = ImbalanceReport(num_classes=10)
    trainer = Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, callbacks=[report],
        limit_test_batches=2, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.test(Classifier(MLP(64, [8]), num_classes=10), DigitsDataModule(), verbose=False)
    assert report.report is not None
    assert "geo" in report.report
    assert report.path is None
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments() -> None:
    with pytest.raises(RecipeConfigError, match="num_classes"):
        GeometricMeanRecall(num_classes=1)
    with pytest.raises(RecipeConfigError, match="class_names"):
        ImbalanceReport(num_classes=3, class_names=["a", "b"])


def test_one_hot_and_probability_targets_count_their_argmax() -> None:
    ids = torch.tensor([0, 1, 2, 2])
    preds = torch.tensor([0, 1, 1, 2])
    expected = PerClassRecall(num_classes=3)
    expected.update(preds, ids)
    for target in (
        torch.nn.functional.one_hot(ids, 3).float(),
        torch.nn.functional.one_hot(ids, 3).float() * 0.7 + 0.1,
    ):
        metric = BalancedAccuracy(num_classes=3)
        metric.update(preds, target)
        assert float(metric.compute()) == pytest.approx(float(expected.compute().mean()))
    with pytest.raises(RecipeConfigError, match=r"target=.*one class id per prediction"):
        PerClassRecall(num_classes=3).update(preds, ids[:3])


class Triples(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """(x, y, group) rows: the report must not read the group id as the label."""

    def __init__(self, dm: DigitsDataModule) -> None:
        data = dm.test_dataset
        assert data is not None
        self.x, self.y = data.features, data.targets  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i], torch.tensor(i % 2)


def test_report_reads_the_label_by_label_key_and_refuses_to_guess(
    make_trainer: Callable[..., Trainer],
) -> None:
    data = DigitsDataModule()
    data.setup("test")
    loader = torch.utils.data.DataLoader(Triples(data), batch_size=64)
    model = Classifier(MLP(64, [8]), num_classes=10)
    model.test_step = lambda batch, batch_idx: None  # type: ignore[method-assign]
    with pytest.raises(RecipeConfigError, match=r"label_key=<index of the label>"):
        make_trainer(callbacks=[ImbalanceReport(num_classes=10, plot=False)]).test(
            model, loader, verbose=False
        )
    report = ImbalanceReport(num_classes=10, plot=False, label_key=1)
    make_trainer(callbacks=[report]).test(model, loader, verbose=False)
    assert report.confusion is not None
    expected = torch.bincount(data.test_dataset.targets, minlength=10)  # type: ignore[union-attr]
    assert report.confusion.sum(axis=1).tolist() == expected.tolist()
