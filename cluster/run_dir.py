"""The run dir a job owns: refusing to overwrite a run, and one job at a time on it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cluster.watcher import RunError
from core.config import JobConfig, dump_config


def checkpoint_paths(config: JobConfig) -> list[Path]:
    return [Path("checkpoints") / config.names().checkpoint_file(t) for t in config.learners()]


RUN_LOCK = ".run.lock"


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on the run dir while one job uses it. Two jobs on one dir
    (say a second `--resume` while the first still runs) would share a league database,
    checkpoints and a Redis AOF. The kernel drops the lock when the holder dies, however
    it dies, so a crashed run never blocks its own resume."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise RunError(
                f"{run_dir} is in use by another job (pid {holder}): stop it, or choose "
                "another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def prepare_run_dir(run_dir: Path, config: JobConfig, resume: bool) -> None:
    missing = [p for p in checkpoint_paths(config) if not (run_dir / p).exists()]
    has_checkpoint = len(missing) < len(checkpoint_paths(config))
    if resume and missing:
        raise RunError(f"--resume: no checkpoint in {run_dir} ({missing[0]} is missing)")
    if not resume and has_checkpoint:
        raise RunError(f"{run_dir} already holds a run: pass --resume or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(config))
