"""GradientMonitor under a real 2-process DDP fit, and the shard-aware norm math."""

from collections.abc import Callable
from typing import Any

import pytest
import torch

from tests.ddp.harness import assert_same_tensors


@pytest.mark.ddp
def test_gradient_monitor_is_identical_on_both_ranks(
    ddp: Callable[..., list[dict[str, Any]]],
) -> None:
    rank0, rank1 = ddp("gradient_monitor_fit")
    assert rank0["history"] == rank1["history"]  # every logged norm, bit for bit
    assert len(rank0["history"]) == 3  # logging steps 0, 2, 4 ...
    assert rank0["global_step"] == rank1["global_step"] == 5  # ... then both stopped
    assert rank0["clipped_steps"] == rank1["clipped_steps"] == 5
    assert_same_tensors(rank0["state_dict"], rank1["state_dict"])
    for result in (rank0, rank1):  # shards summed over ranks == norms of the whole tensors
        for p, sharded in result["sharded"].items():
            for got, expected in zip(sharded, result["whole"][p], strict=True):
                assert torch.allclose(got, expected, rtol=1e-5), (p, got, expected)
