"""The peak memory of one run trained in this process: the accelerator's, else the host's."""

import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PeakMemory", "peak_memory"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


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


def _host_peak() -> int | None:
    """The process's peak resident memory (``VmHWM``), in bytes; None off Linux."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_host_peak() -> bool:
    """Reset ``VmHWM`` to the current resident memory (Linux >= 4.0); False where refused."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


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
    elif not _reset_host_peak() or _host_peak() is None:
        found.kind = "host, since start"
    try:
        yield found
    finally:
        if cuda:
            found.bytes = int(torch.cuda.max_memory_allocated())  # type: ignore[union-attr]
        elif found.kind == "host":
            found.bytes = _host_peak()
        else:
            scale = 1 if sys.platform == "darwin" else 1024  # macOS: bytes; Linux: KiB
            found.bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
