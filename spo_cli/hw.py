"""How many torch threads to use on this machine.

Two threads competing with other work for two cores collapse throughput about tenfold (measured
on the 2-core development machines: 11k tokens/s idle, 0.7k busy with 2 threads, 6k busy with 1),
so `auto` takes every core only when the machine is idle and one thread otherwise.
"""

from __future__ import annotations

import os


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve_threads(threads: int = 0) -> int:
    """`threads` if > 0; else all cores when the 1-minute load is below 0.75, else 1."""
    if threads > 0:
        return threads
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return cores() if load < 0.75 else 1
