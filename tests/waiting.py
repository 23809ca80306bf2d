"""One way for tests to wait: poll a condition until it holds, a deadline passes, or a
process it depends on dies. Tests wait on what they need, never for a fixed time."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout_s: float,
    what: str,
    *procs: subprocess.Popen[Any],
    poll_s: float = 0.2,
) -> T:
    """Returns the condition's first truthy value; fails naming `what` when `timeout_s`
    passes first, or early when one of `procs` has exited (its stderr tail, if piped)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        for proc in procs:
            if proc.poll() is not None:
                detail = ""
                if proc.stderr is not None and not proc.stderr.closed:
                    tail = proc.stderr.read()
                    detail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
                raise AssertionError(
                    f"{proc.args!r:.200} exited ({proc.returncode}) before {what}\n{detail[-3000:]}"
                )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(poll_s)
