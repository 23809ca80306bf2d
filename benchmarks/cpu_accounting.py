"""Where a job's CPU goes: every process on the machine, and this process's threads.

Reads utime + stime from /proc (Linux) at the start and end of a window, so the shares
are measured, not sampled: a process at 0.85 used 85% of one core over the window. The
job's processes are told apart by what Ray names them (`ray::RolloutActor`, ...); this
process is the driver (it runs the league service and the watcher, and Ray's core
worker), and its threads are named from `threading` where Python started them, else by
the name the thread gave the kernel (Ray's and gRPC's C++ threads name themselves).
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(stat_path: Path) -> tuple[str, float] | None:
    """(comm, user + system CPU seconds) of one /proc stat file; None once it is gone."""
    try:
        text = stat_path.read_text()
    except OSError:
        return None
    # comm sits in parentheses and may hold spaces or parentheses itself.
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return comm, (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _process_group(pid: int, own_pid: int) -> str:
    """What a process is in a job: Ray's actor names, Ray's own daemons, Redis, the rest."""
    if pid == own_pid:
        return "driver (league service, watcher, Ray core worker)"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "other"
    for marker, group in (
        ("ray::RolloutActor", "rollout actors"),
        ("ray::LearnerActor", "learner"),
        ("ray::", "other Ray workers"),
        ("redis-server", "Redis"),
        ("raylet", "Ray daemons (raylet, GCS, dashboard, ...)"),
        ("gcs_server", "Ray daemons (raylet, GCS, dashboard, ...)"),
        ("ray/dashboard", "Ray daemons (raylet, GCS, dashboard, ...)"),
        ("ray/_private", "Ray daemons (raylet, GCS, dashboard, ...)"),
        ("default_worker.py", "idle Ray workers"),
    ):
        if marker in cmdline:
            return group
    return "other"


@dataclass
class CpuSnapshot:
    wall: float
    processes: dict[int, tuple[str, float]]  # pid -> (group, cpu seconds)
    threads: dict[int, tuple[str, float]]  # tid of this process -> (name, cpu seconds)


def snapshot() -> CpuSnapshot:
    own = os.getpid()
    # This process's threads and its own total are read back to back, before the walk
    # over /proc (tens of ms on a loaded machine), so the two agree to well under 1 ms.
    python_names = {t.native_id: t.name for t in threading.enumerate()}
    threads: dict[int, tuple[str, float]] = {}
    for entry in Path(f"/proc/{own}/task").iterdir():
        got = _cpu_seconds(entry / "stat")
        if got is not None:
            tid = int(entry.name)
            name = python_names.get(tid, got[0])
            threads[tid] = ("main" if tid == own else name, got[1])
    processes: dict[int, tuple[str, float]] = {}
    got = _cpu_seconds(Path(f"/proc/{own}/stat"))
    if got is not None:
        processes[own] = (_process_group(own, own), got[1])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != own:
            got = _cpu_seconds(entry / "stat")
            if got is not None:
                processes[int(entry.name)] = (_process_group(int(entry.name), own), got[1])
    return CpuSnapshot(time.monotonic(), processes, threads)


def cores_used(start: CpuSnapshot, end: CpuSnapshot) -> dict[str, dict[str, float]]:
    """Cores each process group and each driver thread kept busy between two snapshots
    (processes born in between count from 0; ones that died are missed)."""
    wall = end.wall - start.wall

    def grouped(before: dict, after: dict) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for key, (name, seconds) in after.items():
            totals[name] += seconds - before.get(key, (name, 0.0))[1]
        return {k: round(v / wall, 3) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}

    return {
        "processes": grouped(start.processes, end.processes),
        "driver_threads": {
            k: v for k, v in grouped(start.threads, end.threads).items() if v >= 0.005
        },
        "window_seconds": {"wall": round(wall, 1)},
    }


class CpuWindow:
    """Snapshots at `start_after` and `end_after` seconds from now, on a daemon thread, while
    the caller runs a job in the foreground; `result()` is then the cores used between."""

    def __init__(self, start_after: float, end_after: float) -> None:
        self._snaps: list[CpuSnapshot] = []
        self._thread = threading.Thread(
            target=self._run, args=(start_after, end_after), name="cpu-window", daemon=True
        )
        self._thread.start()

    def _run(self, start_after: float, end_after: float) -> None:
        time.sleep(start_after)
        self._snaps.append(snapshot())
        time.sleep(max(0.0, end_after - start_after))
        self._snaps.append(snapshot())

    def result(self) -> dict[str, dict[str, float]] | None:
        self._thread.join(timeout=0)
        if len(self._snaps) < 2:
            return None
        return cores_used(self._snaps[0], self._snaps[1])
