"""Run code without leaving a trace in any random number generator."""

import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["dataloader_generators", "preserved_rng"]


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
