"""ClassWeighting under a real 2-process DDP fit: identical counts and weights on both ranks."""

from collections.abc import Callable
from typing import Any

import pytest
import torch


@pytest.mark.ddp
def test_both_ranks_count_the_same_and_install_the_same_weights(
    ddp: Callable[..., list[dict[str, Any]]],
) -> None:
    rank0, rank1 = ddp("class_weighting_fit")
    # Every rank holds the whole dataset: its counts are used once, not summed twice.
    assert rank0["dataset_counts"] == rank1["dataset_counts"] == rank0["expected_counts"]
    assert torch.equal(rank0["dataset_weights"], rank1["dataset_weights"])
    # Counting through the loader sees one shard per rank: the shards are summed.
    assert rank0["loader_counts"] == rank1["loader_counts"] == [90, 30, 80] + [0] * 7
    assert torch.equal(rank0["loader_weights"], rank1["loader_weights"])
    assert rank0["loader_weights"][3:].eq(0).all()
