"""Attribution under a real 2-process DDP fit: written once, by rank 0, without a hang."""

from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.ddp
def test_rank_zero_explains_and_writes_once(ddp: Callable[..., list[dict[str, Any]]]) -> None:
    rank0, rank1 = ddp("attribution_fit")
    assert rank0["phases"] == ["epoch0", "epoch1", "fit_end", "test_end"]
    assert rank1["phases"] == []
    expected = [f"attribution/{p}/attributions.pt" for p in rank0["phases"]]
    assert rank0["files"] == rank1["files"] == expected
