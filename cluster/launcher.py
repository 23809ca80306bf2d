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
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.scripted import scripted_problem
from cluster.config import JobConfig, dump_config
from cluster.redis import EmbeddedRedis, RedisEndpoint, connect, parse_redis_url
from cluster.streams import TrajectoryStream
from envs.pettingzoo_adapter import Game
from learner.checkpoint import checkpoint_name

log = logging.getLogger("selfplay")


class RunError(RuntimeError):
    pass


@dataclass
class RunSummary:
    """Team games (env.teams) have one learner and one stream per team: `learner` and
    `stream` are then keyed by team name."""

    seconds: float
    learner: dict[str, Any]
    actors: list[dict[str, Any]]
    stream: dict[str, Any]
    throughput: dict[str, float]


def checkpoint_paths(config: JobConfig) -> list[Path]:
    return [Path("checkpoints") / checkpoint_name(config, t) for t in config.team_prefixes()]


def prepare_run_dir(run_dir: Path, config: JobConfig, resume: bool) -> None:
    missing = [p for p in checkpoint_paths(config) if not (run_dir / p).exists()]
    has_checkpoint = len(missing) < len(checkpoint_paths(config))
    if resume and missing:
        raise RunError(f"--resume: no checkpoint in {run_dir} ({missing[0]} is missing)")
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
        self_play_fraction=config.league.self_play_fraction,
        seed=config.algorithm.seed,
        builtins=config.league.builtins,
        opponent_sampling=config.league.opponent_sampling,
        pfsp_exponent=config.league.pfsp_exponent,
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
    teams = Game(config.env.name, config.env.api, config.env.kwargs, config.team_prefixes()).teams
    for name in config.league.builtins:
        for spec in teams.values():
            problem = None if name == "random" else scripted_problem(name, config.env.name, spec)
            if problem:
                raise RunError(f"league.builtins: {problem}")
    n_actors = config.actors.num_actors
    cpus = max(os.cpu_count() or 1, n_actors + len(teams))
    started = time.monotonic()
    with ExitStack() as stack:
        endpoint = stack.enter_context(redis_for_run(run_dir, redis_url))
        # Ray before the league: ray.init forks its GCS and raylet from this process
        # (running Python in the child before exec), and forking while the league's
        # gRPC threads run can leave a child hung before exec; twice a local start
        # then timed out. Ray spawns its workers from the raylet, not from here.
        stack.enter_context(local_ray(cpus))
        stop_cleanly_on_signals()  # after ray.init, which installs its own SIGTERM handler
        league_address, token = stack.enter_context(league_for_run(run_dir, config))
        data = config.model_dump(mode="json")
        use_gpu = config.algorithm.device != "cpu" and ray.cluster_resources().get("GPU", 0) >= 1
        # Team games: one learner per team; they share the one GPU if there is one.
        gpus = (1.0 / len(teams)) if use_gpu else 0
        learners = {
            lineage: LearnerActor.options(num_gpus=gpus, num_cpus=1).remote(
                data,
                endpoint,
                league_address,
                token,
                str(run_dir),
                spec.obs_dim,
                spec.num_actions,
                resume,
                spec.continuous,
                lineage,
            )
            for lineage, spec in teams.items()
        }
        learner_runs = {lineage: learner.run.remote() for lineage, learner in learners.items()}
        actors = [
            RolloutActor.options(num_cpus=min(config.actors.num_cpus, 1.0)).remote(
                data, endpoint, league_address, token, i, config.algorithm.seed * 1000 + i
            )
            for i in range(n_actors)
        ]
        actor_runs = [a.run.remote() for a in actors]
        client = connect(endpoint)
        streams = {t: TrajectoryStream(client, config.stream_name(t)) for t in teams}
        deadline = None if minutes is None else started + 60 * minutes
        watcher = _Watcher(learners, actors, streams)
        try:
            watcher.watch([*learner_runs.values(), *actor_runs], deadline, progress_every_s)
        except KeyboardInterrupt:
            print("stopping (Ctrl-C again to abort)...", file=sys.stderr)
        for actor in actors:
            actor.stop.remote()
        actor_stats = [get_or_explain(run) for run in actor_runs]
        for learner in learners.values():
            learner.stop.remote()
        learner_stats = {t: get_or_explain(run) for t, run in learner_runs.items()}
        stream_stats = {t: stream.stats() for t, stream in streams.items()}
        one = not config.env.teams
        return RunSummary(
            time.monotonic() - started,
            next(iter(learner_stats.values())) if one else learner_stats,
            actor_stats,
            next(iter(stream_stats.values())) if one else stream_stats,
            watcher.throughput(),
        )


def stop_cleanly_on_signals() -> None:
    """SIGTERM (kill, docker stop, a scheduler) takes the same clean-stop path as Ctrl-C.
    SIGINT is re-armed too: a shell starts background jobs with SIGINT ignored, and Python
    then never raises KeyboardInterrupt."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)
        signal.signal(signal.SIGINT, signal.default_int_handler)


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

    def __init__(
        self, learners: dict[str, Any], actors: list[Any], streams: dict[str, TrajectoryStream]
    ):
        self.learners, self.actors, self.streams = learners, actors, streams
        self.samples: list[_Sample] = []

    def sample(self) -> None:
        import ray

        replies = ray.get([learner.stats.remote() for learner in self.learners.values()])
        stats = dict(zip(self.learners, replies, strict=True))
        env_steps = sum(a["env_steps"] for a in ray.get([a.stats.remote() for a in self.actors]))
        streams = {t: s.stats() for t, s in self.streams.items()}
        consumed = sum(s["steps_consumed"] for s in streams.values())
        now = time.monotonic()
        prev = self.samples[-1] if self.samples else None
        self.samples.append(_Sample(now, consumed, env_steps))
        rate = 0.0 if prev is None else (consumed - prev.learner_steps) / (now - prev.t)
        parts = []
        for lineage, st in stats.items():
            s = streams[lineage]
            name = f"{lineage} " if len(stats) > 1 else ""
            parts.append(
                f"{name}version {st['version']} updates {st['updates']} trained "
                f"{st['steps_trained']} steps stream {s['length']} dropped_lag "
                f"{s['chunks_dropped_lag']} rejected {s['chunks_rejected']} "
                f"lag_median {st['lag_median']}"
            )
        print(
            f"[{time.strftime('%H:%M:%S')}] {' | '.join(parts)} ({rate:,.0f} steps/s)",
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
