"""EarlyStopping under a real 2-process DDP fit: one decision, one set of best weights."""

from collections.abc import Callable
from typing import Any

import pytest

from tests.ddp.harness import assert_same_tensors


@pytest.mark.ddp
def test_both_ranks_stop_together_with_the_same_best_weights(
    ddp: Callable[..., list[dict[str, Any]]],
) -> None:
    rank0, rank1 = ddp("early_stopping_fit")
    for key in ("best_score", "best_epoch", "wait_count", "stopped_epoch", "current_epoch"):
        assert rank0[key] == rank1[key], key
    assert rank0["stopped_epoch"] > 0  # it stopped early ...
    assert rank0["best_epoch"] < rank0["stopped_epoch"] - 1  # ... after a best epoch
    assert rank0["restored_from"] == rank1["restored_from"] == "memory"
    assert_same_tensors(rank0["state_dict"], rank1["state_dict"])
    assert rank0["recomputed_val_loss"] == pytest.approx(rank0["best_score"], rel=1e-6)
    # val_loss logged without sync_dist: rank 0 saw 1.0 at epoch 3, rank 1 saw 2.0.
    assert rank0["unsynced"] == rank1["unsynced"] == (1.5, 3, 5)
