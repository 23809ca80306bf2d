"""`selfplay run`: the whole job on one machine, from the same parts a cluster uses.

Starts (or reuses, with --resume) everything the job needs inside the run dir:
embedded Redis (AOF in run_dir/redis), the league service (run_dir/league.db) in
this process, a local Ray, the learner and the rollout actors as Ray actors. It
stops cleanly at the time limit or on Ctrl-C: actors first (they send what they
finished), then the learner (final checkpoint), then the league and Redis.

This module and cli.py are the only parts of `cluster` that import `actors` and
`learner`: they wire the rooms together.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.config import JobConfig, dump_config
from cluster.redis import EmbeddedRedis, RedisEndpoint, connect, parse_redis_url
from cluster.streams import TrajectoryStream
from envs.pettingzoo_adapter import Game

log = logging.getLogger("selfplay")

CHECKPOINT_REL = Path("checkpoints") / "learner.safetensors"


class RunError(RuntimeError):
    pass


@dataclass
class RunSummary:
    seconds: float
    learner: dict[str, Any]
    actors: list[dict[str, Any]]
    stream: dict[str, int]
    throughput: dict[str, float]


def prepare_run_dir(run_dir: Path, config: JobConfig, resume: bool) -> None:
    has_checkpoint = (run_dir / CHECKPOINT_REL).exists()
    if resume and not has_checkpoint:
        raise RunError(f"--resume: no checkpoint in {run_dir} ({CHECKPOINT_REL} is missing)")
    if not resume and has_checkpoint:
        raise RunError(f"{run_dir} already holds a run: pass --resume or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(config))


@contextmanager
def redis_for_run(run_dir: Path, redis_url: str | None) -> Iterator[RedisEndpoint]:
    if redis_url:
        endpoint = parse_redis_url(redis_url)
        connect(endpoint).close()
        yield endpoint
        return
    with EmbeddedRedis(run_dir / "redis") as endpoint:
        yield endpoint


@contextmanager
def league_for_run(run_dir: Path, config: JobConfig) -> Iterator[tuple[str, str | None]]:
    from league.server import LeagueServer, LeagueSettings

    if config.league.address:
        yield config.league.address, os.environ.get("SELFPLAY_LEAGUE_TOKEN")
        return
    token = os.environ.get("SELFPLAY_LEAGUE_TOKEN") or secrets.token_urlsafe(24)
    settings = LeagueSettings(
        self_play_fraction=config.league.self_play_fraction, seed=config.algorithm.seed
    )
    server = LeagueServer(
        run_dir / "league.db",
        host=config.league.host,
        port=config.league.port,
        token=token,
        settings=settings,
    )
    server.start()
    try:
        yield server.address, token
    finally:
        server.stop(1.0)


@contextmanager
def local_ray(num_cpus: int) -> Iterator[None]:
    import ray

    if ray.is_initialized():
        yield
        return
    for attempt in (1, 2):
        try:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                logging_level=logging.WARNING,
                configure_logging=False,
                log_to_driver=True,
            )
            break
        except Exception as exc:  # Ray raises a bare Exception for this
            # A start that misses Ray's fixed 30 s deadline is retried once, then
            # reported (see run_job for the cause we found and removed).
            if attempt == 2 or "timed out" not in str(exc).lower():
                raise RunError(f"local Ray did not start: {exc}") from None
            log.warning("local Ray did not start in time; trying once more")
            ray.shutdown()
    try:
        yield
    finally:
        ray.shutdown()


def run_job(
    config: JobConfig,
    run_dir: Path,
    minutes: float | None,
    resume: bool = False,
    redis_url: str | None = None,
    progress_every_s: float = 15.0,
) -> RunSummary:
    import ray

    from actors.ray_actor import RolloutActor
    from learner.ray_learner import LearnerActor

    prepare_run_dir(run_dir, config, resume)
    spec = Game(config.env.name, config.env.api, config.env.kwargs).spec
    n_actors = config.actors.num_actors
    cpus = max(os.cpu_count() or 1, n_actors + 1)
    started = time.monotonic()
    with ExitStack() as stack:
        endpoint = stack.enter_context(redis_for_run(run_dir, redis_url))
        # Ray before the league: ray.init forks its GCS and raylet from this process
        # (running Python in the child before exec), and forking while the league's
        # gRPC threads run can leave a child hung before exec; twice a local start
        # then timed out. Ray spawns its workers from the raylet, not from here.
        stack.enter_context(local_ray(cpus))
        league_address, token = stack.enter_context(league_for_run(run_dir, config))
        data = config.model_dump(mode="json")
        use_gpu = config.algorithm.device != "cpu" and ray.cluster_resources().get("GPU", 0) >= 1
        learner = LearnerActor.options(num_gpus=1 if use_gpu else 0, num_cpus=1).remote(
            data,
            endpoint,
            league_address,
            token,
            str(run_dir),
            spec.obs_dim,
            spec.num_actions,
            resume,
            spec.continuous,
        )
        learner_run = learner.run.remote()
        actors = [
            RolloutActor.options(num_cpus=min(config.actors.num_cpus, 1.0)).remote(
                data, endpoint, league_address, token, i, config.algorithm.seed * 1000 + i
            )
            for i in range(n_actors)
        ]
        actor_runs = [a.run.remote() for a in actors]
        stream = TrajectoryStream(connect(endpoint), config.job)
        deadline = None if minutes is None else started + 60 * minutes
        watcher = _Watcher(learner, actors, stream)
        try:
            watcher.watch([learner_run, *actor_runs], deadline, progress_every_s)
        except KeyboardInterrupt:
            print("stopping (Ctrl-C again to abort)...", file=sys.stderr)
        for actor in actors:
            actor.stop.remote()
        actor_stats = [get_or_explain(run) for run in actor_runs]
        learner.stop.remote()
        learner_stats = get_or_explain(learner_run)
        return RunSummary(
            time.monotonic() - started,
            learner_stats,
            actor_stats,
            stream.stats(),
            watcher.throughput(),
        )


def get_or_explain(ref: Any) -> Any:
    """ray.get, with a remote failure turned into a one-line RunError (the full
    traceback is in the Ray worker's log above)."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        cause = exc.cause if isinstance(exc, ray.exceptions.RayTaskError) else exc
        lines = [line for line in str(cause).splitlines() if line.strip()]
        raise RunError(f"{type(cause).__name__}: {lines[-1] if lines else ''}") from None


@dataclass
class _Sample:
    t: float
    learner_steps: int  # steps consumed by the learner (stream accounting)
    env_steps: int  # every agent decision in every actor's games


class _Watcher:
    """Prints progress to stderr; its first and last samples give the steady-state
    throughput (start-up excluded) reported in the run summary."""

    def __init__(self, learner: Any, actors: list[Any], stream: TrajectoryStream):
        self.learner, self.actors, self.stream = learner, actors, stream
        self.samples: list[_Sample] = []

    def sample(self) -> None:
        import ray

        stats = ray.get(self.learner.stats.remote())
        env_steps = sum(a["env_steps"] for a in ray.get([a.stats.remote() for a in self.actors]))
        s = self.stream.stats()
        now = time.monotonic()
        prev = self.samples[-1] if self.samples else None
        self.samples.append(_Sample(now, s["steps_consumed"], env_steps))
        rate = 0.0 if prev is None else (s["steps_consumed"] - prev.learner_steps) / (now - prev.t)
        print(
            f"[{time.strftime('%H:%M:%S')}] version {stats['version']} "
            f"updates {stats['updates']} trained {stats['steps_trained']} steps "
            f"({rate:,.0f}/s) stream {s['length']} dropped_lag {s['chunks_dropped_lag']} "
            f"rejected {s['chunks_rejected']} lag_median {stats['lag_median']}",
            file=sys.stderr,
            flush=True,
        )

    def throughput(self) -> dict[str, float]:
        if len(self.samples) < 2:
            return {}
        a, b = self.samples[0], self.samples[-1]
        dt = b.t - a.t
        return {
            "window_seconds": round(dt, 1),
            "learner_steps_per_s": round((b.learner_steps - a.learner_steps) / dt, 1),
            "env_steps_per_s": round((b.env_steps - a.env_steps) / dt, 1),
        }

    def watch(self, runs: list[Any], deadline: float | None, every_s: float) -> None:
        """Samples until the deadline; a learner or actor that ends early ends the run."""
        import ray

        while deadline is None or time.monotonic() < deadline:
            left = every_s if deadline is None else deadline - time.monotonic()
            done, _ = ray.wait(runs, num_returns=1, timeout=max(0.0, min(every_s, left)))
            if done:
                get_or_explain(done[0])  # raises the remote error, if that is why it ended
                raise RunError("a learner or actor stopped unexpectedly")
            self.sample()
