"""Each block gets its own peak memory (ablate's runs, the CPU batch-size finder's trials)."""

import pytest

from lightning_recipes._core.peak_memory import peak_memory


def test_a_block_gets_its_own_peak_not_the_process_high_water_mark() -> None:
    with peak_memory() as big:
        block = bytearray(192 * 2**20)
        block[:: 2**12] = b"x" * len(block[:: 2**12])  # touch every page: resident
    del block
    with peak_memory() as small:
        little = bytearray(2**20)
    del little
    if big.kind != "host":
        pytest.skip(f"the peak cannot be reset here ({big.kind})")
    assert big.bytes is not None
    assert small.bytes is not None
    assert big.bytes - small.bytes > 128 * 2**20
