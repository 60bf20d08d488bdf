"""The regularization recipes under a real 2-process DDP fit."""

from collections.abc import Callable
from typing import Any

import pytest
import torch

from tests.registry import assert_same


@pytest.mark.ddp
def test_regularization_is_identical_on_both_ranks_and_equals_the_explicit_term(
    ddp: Callable[..., list[dict[str, Any]]],
) -> None:
    rank0, rank1 = ddp("regularization_fits")
    assert_same(rank0, rank1)  # weights, LSUV variances, penalty and activation histories
    ours, explicit = rank0["callbacks"], rank0["explicit"]
    assert ours["variances"] == explicit["variances"]  # the same LSUV init in both fits
    assert all(abs(v - 1) < 0.1 for v in ours["variances"].values())
    for key, value in ours["weights"].items():
        if value.is_floating_point():
            assert torch.allclose(value, explicit["weights"][key], atol=1e-5), key
    penalty_state, monitor_state = ours["state"][1], ours["state"][2]
    assert [s for s, _ in penalty_state["history"]] == [0, 2, 4]
    assert monitor_state["steps"] == [0, 2, 4]
