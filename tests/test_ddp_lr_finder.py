"""LRFinder under a real 2-process DDP fit: one curve, one decision, identical weights."""

from collections.abc import Callable
from typing import Any

import pytest
import torch

from tests.ddp.harness import assert_same_tensors


@pytest.mark.ddp
def test_both_ranks_record_the_mean_loss_and_choose_the_same_rate(
    ddp: Callable[..., list[dict[str, Any]]],
) -> None:
    rank0, rank1 = ddp("lr_finder_fit")
    assert [r["epoch"] for r in rank0["results"]] == [0, 1]
    assert rank0["results"] == rank1["results"]  # curves and choices, bit for bit
    # Each rank's first batch differs; the recorded step-0 loss is their mean.
    local = (rank0["first_batch_loss"], rank1["first_batch_loss"])
    assert abs(local[0] - local[1]) > 1e-3
    assert rank0["results"][0]["losses"][0] == pytest.approx(sum(local) / 2, rel=1e-5)
    chosen = rank0["results"][1]["chosen"]
    assert rank0["optimizer_lr"] == rank1["optimizer_lr"] == chosen
    assert rank0["model_lr"] == rank1["model_lr"] == chosen
    assert_same_tensors(rank0["state_dict"], rank1["state_dict"])
    # The sweep's own gradient averaging (its copy is not wrapped in DDP): missing = 0.
    for result in (rank0, rank1):
        assert torch.equal(result["synced_grads"][0], torch.full((3,), 1.5))
        assert torch.equal(result["synced_grads"][1], torch.full((2, 2), 0.5))
