"""SnapshotEnsemble and WeightAverage under a real 2-process DDP fit."""

from collections.abc import Callable
from typing import Any

import pytest
import torch

from tests.ddp.harness import assert_same_tensors

BN = "backbone.1."  # the BatchNorm1d of MLP(64, hidden=(32,), batch_norm=True)


def _bn_stats(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith(BN) and k.split(".")[-1] != "weight"}


@pytest.mark.ddp
def test_snapshots_and_weight_averages_agree_across_ranks(
    ddp: Callable[..., list[dict[str, Any]]],
) -> None:
    rank0, rank1 = ddp("ensembles_fits")
    swa0, swa1 = rank0["swa"], rank1["swa"]
    # SnapshotEnsemble: the same snapshots on both ranks, at every epoch end.
    assert swa0["in_memory_epochs"] == swa1["in_memory_epochs"] == [0, 1, 2]
    for a, b in zip(swa0["in_memory"], swa1["in_memory"], strict=True):
        assert_same_tensors(a, b)
    # With save_dir: rank 0 alone writes (one partial file per snapshot, renamed), the
    # dropped snapshot's file is deleted, and both ranks load the kept files, which hold
    # the in-memory snapshots of the same epochs.
    assert len(swa0["writes"]) == 3
    assert swa1["writes"] == []
    assert swa0["files"] == swa1["files"] == ["snapshot-epoch=1.pt", "snapshot-epoch=2.pt"]
    assert swa0["on_disk_epochs"] == swa1["on_disk_epochs"] == [1, 2]
    for rank in (swa0, swa1):
        for loaded, kept in zip(rank["loaded"], swa0["in_memory"][1:], strict=True):
            assert_same_tensors(loaded, kept)

    # SWA from epoch 1: the mean of the epoch-end weights of epochs 1 and 2, on both ranks;
    # BatchNorm statistics recomputed for the average, mean-reduced over the ranks' shards.
    assert_same_tensors(swa0["weights"], swa1["weights"])
    assert swa0["bn_updated"]
    assert swa1["bn_updated"]
    last_live = swa0["epochs"][-1]
    for name, value in swa0["weights"].items():
        if name.endswith(("weight", "bias")):
            expected = (swa0["epochs"][1][name] + swa0["epochs"][2][name]) / 2
            torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    for name, value in _bn_stats(swa0["weights"]).items():
        if value.is_floating_point():
            assert not torch.allclose(value, last_live[name]), name

    # EMA: identical averaged weights and recomputed statistics on both ranks, not the
    # live weights of the last epoch.
    ema0, ema1 = rank0["ema"], rank1["ema"]
    assert_same_tensors(ema0["weights"], ema1["weights"])
    assert ema0["bn_updated"]
    assert ema1["bn_updated"]
    assert not torch.allclose(ema0["weights"]["head.weight"], ema0["epochs"][-1]["head.weight"])
    for name, value in _bn_stats(ema0["weights"]).items():
        if value.is_floating_point():
            assert not torch.allclose(value, ema0["epochs"][-1][name]), name
