"""The Classifier and the _core.trainer helpers under a real 2-process DDP fit (CPU, gloo)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ddp.harness import assert_same_tensors


@pytest.mark.ddp
def test_ddp_fit_keeps_ranks_identical_and_syncs_metrics(
    ddp: Callable[..., list[dict[str, Any]]],
) -> None:
    rank0, rank1 = ddp("classifier_fit", max_epochs=2)
    assert (rank0["rank"], rank1["rank"]) == (0, 1)
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["family"] == "ddp"
    # Each rank trained on its own half of the data (DistributedSampler pads an odd-sized
    # set with one repeated sample) ...
    shard0, shard1 = set(rank0["train_indices"]), set(rank1["train_indices"])
    assert shard0 | shard1 == set(range(rank0["n_train"]))
    assert len(shard0 & shard1) <= 1
    # ... yet gradients were synced, so the weights are bitwise identical.
    assert_same_tensors(rank0["state_dict"], rank1["state_dict"])
    # Epoch metrics are reduced across ranks: both ranks report the same values.
    for name in ("val_loss", "val_acc", "val_macro_f1", "train_loss_epoch", "train_acc"):
        assert rank0["metrics"][name] == rank1["metrics"][name], name
    # The collective helpers.
    assert rank0["reduce_mean"] == rank1["reduce_mean"] == 0.5
    assert rank0["reduce_sum"] == rank1["reduce_sum"] == 3.0
    assert rank0["broadcast"] == rank1["broadcast"] == {"from": 0}
    assert rank0["agree_all_true"]
    assert rank1["agree_all_true"]
    assert not rank0["agree_rank0_only"]
    assert not rank1["agree_rank0_only"]
    # Figures are written once, by rank 0.
    assert rank1["figure_path"] is None
    assert Path(rank0["figure_path"]).read_bytes().startswith(b"\x89PNG")
    assert Path(rank0["rank_zero_path"]).read_bytes().startswith(b"\x89PNG")
