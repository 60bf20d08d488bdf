"""The augmentation callbacks under a real 2-process DDP fit."""

from collections.abc import Callable
from typing import Any

import pytest
import torch


@pytest.mark.ddp
def test_ranks_share_seed_and_weights_but_draw_their_own(
    ddp: Callable[..., list[dict[str, Any]]],
) -> None:
    rank0, rank1 = ddp("augmentation_fit")
    for key, value in rank0["weights"].items():
        assert torch.equal(value, rank1["weights"][key]), key
    # One seed (rank 0's, broadcast); CutMix's p=0.5 coin is each rank's own.
    for one, other in zip(rank0["states"], rank1["states"], strict=True):
        assert one["seed"] == other["seed"] == 0
        assert one["batches_seen"] == other["batches_seen"] == 6
    assert [s["batches_augmented"] for s in rank0["states"]][:2] == [6, 6]
    # Each rank augments its own shard with its own draws.
    assert not torch.equal(rank0["seen"], rank1["seen"])
    assert rank0["hooks"] == rank1["hooks"] == 0  # removed at teardown
    assert torch.equal(rank0["loss_weight"], rank1["loss_weight"])
