"""Freezer under a real 2-process DDP fit: unfrozen parameters stay in sync across ranks."""

from collections.abc import Callable
from typing import Any

import pytest
import torch

from tests.ddp.harness import assert_same_tensors


@pytest.mark.ddp
def test_parameters_stay_identical_after_unfreezing(
    ddp: Callable[..., list[dict[str, Any]]],
) -> None:
    rank0, rank1 = ddp("freezer_fit")
    assert rank0["unfrozen"] == rank1["unfrozen"] == 2
    assert rank0["lrs"] == rank1["lrs"]
    assert_same_tensors(rank0["state_dict"], rank1["state_dict"])


@pytest.mark.ddp
def test_without_rebuilding_ddp_the_ranks_drift_apart(
    ddp: Callable[..., list[dict[str, Any]]],
) -> None:
    """The control: what Lightning's BackboneFinetuning does under DDP (#20340)."""
    rank0, rank1 = ddp("freezer_fit", rewrap=False)
    backbone = [k for k in rank0["state_dict"] if k.startswith("backbone.")]
    assert any(not torch.equal(rank0["state_dict"][k], rank1["state_dict"][k]) for k in backbone)
