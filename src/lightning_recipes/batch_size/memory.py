"""Memory budgets in bytes, and the process's peak resident memory on the CPU.

On a GPU an out-of-memory error marks the limit, and a budget below the device's size is
set with ``torch.cuda.set_per_process_memory_fraction`` (the allocator then raises a real
out-of-memory error at the budget). On the CPU there is no such limit to find (the system
swaps or kills the process long before a tensor allocation fails), so a CPU budget is
judged by the peak resident set size of the process during a trial: Linux's ``VmHWM``,
reset before each trial through ``/proc/self/clear_refs``. Where that reset is not
available the peak can only grow (``getrusage``), which only an increasing search can use.
"""

import os

from lightning_recipes._core.peak_memory import peak_rss, reset_peak_rss
from lightning_recipes._core.validate import is_int, is_real
from lightning_recipes.errors import config_error

__all__ = ["budget_bytes", "check_max_memory", "peak_rss", "physical_memory", "reset_peak_rss"]


def check_max_memory(max_memory: object) -> float | int | None:
    """Validate ``max_memory``: None, a fraction in (0, 1] (float), or bytes (int >= 1 MiB).

    Examples:
        >>> check_max_memory(0.5), check_max_memory(2**30), check_max_memory(None)
        (0.5, 1073741824, None)
    """
    if max_memory is None:
        return None
    if is_int(max_memory):
        if max_memory < 2**20:
            raise config_error(
                "max_memory",
                max_memory,
                "An int is a number of bytes: pass at least 1 MiB (2**20), or a float in "
                "(0, 1] for a fraction of the device's memory.",
            )
        return int(max_memory)
    if is_real(max_memory) and 0 < max_memory <= 1:
        return float(max_memory)
    raise config_error(
        "max_memory",
        max_memory,
        "Pass a fraction of the device's memory in (0, 1] (a float) or a number of bytes "
        "(an int), or None for no budget.",
    )


def budget_bytes(max_memory: float | int, total: int) -> int:
    """The budget in bytes: a float is a fraction of ``total``, an int is bytes already.

    Examples:
        >>> budget_bytes(0.25, 8 * 2**30) == 2 * 2**30, budget_bytes(2**30, 8 * 2**30)
        (True, 1073741824)
    """
    if isinstance(max_memory, float):
        return int(max_memory * total)
    return int(max_memory)


def physical_memory() -> int:
    """The machine's physical memory in bytes (``os.sysconf``)."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
