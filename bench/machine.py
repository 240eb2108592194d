"""The line every bench prints first about the machine it ran on, so two runs' figures can be compared."""

from __future__ import annotations

import os
import platform
import timeit


def machine_line() -> str:
    """Python's version, the machine, its cores, and how long one pure-Python loop takes here (the best of
    5). A ratio that weighs Python's CPU against what the kernel, PostgreSQL or Redis spend moves with that
    speed from one machine to the next (issue 19 read 0.08x to 0.21x for the same loop on three machines)."""
    loop = min(timeit.repeat("sum(range(10**6))", number=1, repeat=5))
    return (
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"sum(range(10**6)) in {loop * 1000:.1f} ms"
    )
