"""Polling helper shared by the tests of long-running processes (workers, learners)."""

from __future__ import annotations

import time


def wait_until(cond, timeout: float = 120.0, what: str = "condition"):
    """Poll cond() every 50 ms until it returns something truthy (returned); fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
