"""Run code without leaving a trace in any random number generator."""

import os
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["dataloader_generators", "preserved_rng", "run_seed"]


def run_seed() -> int:
    """The seed the run was given with ``seed_everything`` (LightningCLI's ``seed_everything``).

    Lightning's ``seed_everything`` records it in the ``PL_GLOBAL_SEED`` environment
    variable (which its DDP launcher passes to every rank); 0 when no seed was set.

    Returns:
        The run's seed.
    """
    value = os.environ.get("PL_GLOBAL_SEED", "")
    return int(value) if value.lstrip("-").isdigit() else 0


def dataloader_generators(loader: object) -> list[torch.Generator]:
    """The ``torch.Generator`` objects a DataLoader draws from when it is iterated.

    Iterating a DataLoader advances its own ``generator`` (worker seeds) and its sampler's
    (shuffling), which the global seed state does not cover.

    Args:
        loader: A DataLoader, or anything else (which has none).

    Returns:
        The distinct generators of the loader, its sampler and its batch sampler's sampler.
    """
    found: list[torch.Generator] = []
    batch_sampler = getattr(loader, "batch_sampler", None)
    owners = (
        loader,
        getattr(loader, "sampler", None),
        batch_sampler,
        getattr(batch_sampler, "sampler", None),
    )
    for owner in owners:
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
            found.append(generator)
    return found


@contextmanager
def preserved_rng(generators: Iterable[torch.Generator] = ()) -> Iterator[None]:
    """Restore every random state on exit, also when the block raises.

    Covers Python's ``random``, NumPy's global generator, torch's CPU generator, every
    CUDA device's generator (when CUDA is initialised) and the given extra generators.

    Args:
        generators: Extra ``torch.Generator`` objects to restore (e.g. a DataLoader's).

    Yields:
        Nothing; the states are restored when the block ends.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> with preserved_rng():
        ...     _ = torch.rand(3)
        >>> after = torch.rand(1)
        >>> _ = torch.manual_seed(0)
        >>> bool(torch.rand(1) == after)  # as if the block had not run
        True
    """
    extra = list(generators)
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None  # type: ignore[no-untyped-call]
    extra_states = [generator.get_state() for generator in extra]
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        for generator, state in zip(extra, extra_states, strict=True):
            generator.set_state(state)


# numpy's SeedSequence and PCG64 seeding, in Python integers (numpy/random/bit_generator.pyx
# and pcg64.c): building both per batch costs ~0.1 ms inside a training step (cold caches).
_MASK32 = 0xFFFFFFFF
_MASK128 = (1 << 128) - 1
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_PCG_MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645
_POOL_SIZE = 4


def _words(entropy: Iterable[int]) -> list[int]:
    """The 32-bit words numpy's SeedSequence reads from a list of non-negative ints."""
    words: list[int] = []
    for value in entropy:
        if value < 0:
            raise ValueError(f"entropy must be non-negative, got {value}")
        if value == 0:
            words.append(0)
        while value > 0:
            words.append(value & _MASK32)
            value >>= 32
    return words


def seed_sequence_pool(entropy: Iterable[int]) -> list[int]:
    """``np.random.SeedSequence(entropy).pool`` as Python ints (no spawn key, pool of 4)."""
    words = _words(entropy)
    words += [0] * (_POOL_SIZE - len(words))
    hash_const = _INIT_A
    pool = []
    for word in words[:_POOL_SIZE]:  # hashmix
        value = word ^ hash_const
        hash_const = (hash_const * _MULT_A) & _MASK32
        value = (value * hash_const) & _MASK32
        pool.append(value ^ (value >> 16))
    sources = [(i_src, i_dst) for i_src in range(_POOL_SIZE) for i_dst in range(_POOL_SIZE)]
    for i_src, i_dst in sources:
        if i_src == i_dst:
            continue
        value = pool[i_src] ^ hash_const  # hashmix(pool[i_src]), then mix into pool[i_dst]
        hash_const = (hash_const * _MULT_A) & _MASK32
        value = (value * hash_const) & _MASK32
        value ^= value >> 16
        result = (_MIX_MULT_L * pool[i_dst] - _MIX_MULT_R * value) & _MASK32
        pool[i_dst] = result ^ (result >> 16)
    for word in words[_POOL_SIZE:]:
        for i_dst in range(_POOL_SIZE):
            value = word ^ hash_const
            hash_const = (hash_const * _MULT_A) & _MASK32
            value = (value * hash_const) & _MASK32
            value ^= value >> 16
            result = (_MIX_MULT_L * pool[i_dst] - _MIX_MULT_R * value) & _MASK32
            pool[i_dst] = result ^ (result >> 16)
    return pool


def reseed(generator: np.random.Generator, entropy: Iterable[int]) -> np.random.Generator:
    """Put ``generator`` (on a PCG64) in the state of ``default_rng(SeedSequence(entropy))``.

    The same draws as a new generator from that seed sequence, without building one (one
    generator per owner, re-seeded for each use).

    Args:
        generator: A ``np.random.Generator`` on a ``PCG64`` bit generator.
        entropy: Non-negative ints, as ``np.random.SeedSequence(entropy)`` takes them.

    Returns:
        ``generator``, re-seeded.

    Examples:
        >>> entropy = [2**63 - 1, 7, 0, 3]
        >>> mine = reseed(np.random.default_rng(), entropy)
        >>> bool(mine.random() == np.random.default_rng(np.random.SeedSequence(entropy)).random())
        True
    """
    pool = seed_sequence_pool(entropy)
    hash_const = _INIT_B
    words = []
    for i in range(8):  # generate_state(4, np.uint64): 8 words, read little-endian in pairs
        value = pool[i % _POOL_SIZE] ^ hash_const
        hash_const = (hash_const * _MULT_B) & _MASK32
        value = (value * hash_const) & _MASK32
        words.append(value ^ (value >> 16))
    seed = [words[2 * k] | (words[2 * k + 1] << 32) for k in range(4)]
    init_state, init_seq = (seed[0] << 64) | seed[1], (seed[2] << 64) | seed[3]
    inc = ((init_seq << 1) | 1) & _MASK128
    state = (inc + init_state) & _MASK128  # step from 0: 0 * multiplier + inc, then + init
    state = (state * _PCG_MULTIPLIER + inc) & _MASK128
    generator.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": state, "inc": inc},
        "has_uint32": 0,
        "uinteger": 0,
    }
    return generator
