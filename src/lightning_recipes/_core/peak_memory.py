"""The peak memory of a block of work: the accelerator's, else the process's resident memory.

On a CUDA device the allocator's peak (``torch.cuda.max_memory_allocated``). On the CPU the
process's peak resident set size: Linux's ``VmHWM``, which ``/proc/self/clear_refs``
resets (Linux >= 4.0), so each block gets its own peak; where it cannot be reset the peak
since the process started (``getrusage``), which only a block that raises it changes.
Shared by ``ablate`` (each run's peak) and ``BatchSizeFinder`` (each trial's, on the CPU).
"""

import re
import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PeakMemory", "peak_memory", "peak_rss", "reset_peak_rss"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_rss() -> bool:
    """Reset the process's peak resident size to its current size; False if impossible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _vm_hwm() -> int | None:
    try:
        found = re.search(r"VmHWM:\s+(\d+)\s+kB", _STATUS.read_text())
    except OSError:
        return None
    return int(found.group(1)) * 1024 if found is not None else None


def peak_rss() -> int:
    """The process's peak resident set size in bytes (since the last `reset_peak_rss`)."""
    found = _vm_hwm()
    if found is not None:
        return found
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS: bytes; Linux: KiB


@dataclass
class PeakMemory:
    """What `peak_memory` measured.

    Attributes:
        bytes: The peak, in bytes (None before the block ends or where nothing measures it).
        kind: ``"cuda"`` (the most the CUDA caching allocator held for tensors),
            ``"host"`` (the process's peak resident memory, its baseline included) or
            ``"host, since start"`` (the process's peak since it started: where the peak
            cannot be reset, only a run that raises it shows a change).
    """

    bytes: int | None = None
    kind: str = "host"


@contextmanager
def peak_memory() -> Iterator[PeakMemory]:
    """Measure the peak memory of the block.

    On a CUDA device that torch has initialised, the peak of allocated device memory
    (``torch.cuda.max_memory_allocated``, reset first). Otherwise the host's peak resident
    memory: Linux resets it when asked (``/proc/self/clear_refs``), so each block gets its
    own peak; elsewhere the peak since the process started (``ru_maxrss``).

    Example:
        >>> with peak_memory() as peak:
        ...     block = bytearray(1 << 20)
        >>> peak.bytes is None or peak.bytes > 0
        True
    """
    torch = sys.modules.get("torch")
    cuda = torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()
    found = PeakMemory(kind="cuda" if cuda else "host")
    if cuda:
        torch.cuda.reset_peak_memory_stats()  # type: ignore[union-attr]
    elif not reset_peak_rss() or _vm_hwm() is None:
        found.kind = "host, since start"
    try:
        yield found
    finally:
        if cuda:
            found.bytes = int(torch.cuda.max_memory_allocated())  # type: ignore[union-attr]
        else:
            found.bytes = peak_rss()
