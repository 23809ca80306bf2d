"""`selfplay run`: the whole job on one machine, from the same parts a cluster uses.

Starts (or reuses, with --resume) everything the job needs inside the run dir:
embedded Redis (AOF in run_dir/redis), the league service (run_dir/league.db) in
this process, a local Ray, the learner and the rollout actors as Ray actors. It
stops cleanly at the time limit or on Ctrl-C: actors first (they send what they
finished), then the learner (final checkpoint), then the league and Redis.

It is the wiring: the league's address and token go to the Ray actor shells
(cluster/rollout_actor.py, cluster/learner_actor.py), which build league clients and hand
them to the actors and learners; those know the league only as core/league_protocol.py.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.checks import check_job
from cluster.control import create_control
from cluster.fleet import ActorFleet
from cluster.run_dir import prepare_run_dir, run_dir_lock
from cluster.status import STATUS_FILE
from cluster.watcher import RunError, Watcher, get_or_explain
from core.config import JobConfig
from core.spaces import PolicyShape
from envs.goal import goal_task
from envs.pettingzoo_adapter import Game
from league.client import LeagueClient
from transport.redis import EmbeddedRedis, RedisEndpoint, connect, parse_redis_url
from transport.streams import TrajectoryStream

log = logging.getLogger("selfplay")


@dataclass
class RunSummary:
    """Jobs with several learners (one per team in team games; the main agent and its
    exploiters) have one stream per learner: `learner` and `stream` are then keyed by
    lineage."""

    seconds: float
    learner: dict[str, Any]
    actors: list[dict[str, Any]]
    stream: dict[str, Any]
    throughput: dict[str, float]


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
def league_for_run(
    run_dir: Path, config: JobConfig, on_cluster: bool = False
) -> Iterator[tuple[str, str | None]]:
    """The league's address and token. `on_cluster`: actors on other nodes must reach it,
    so a loopback `league.host` binds all interfaces instead and the address handed to
    actors is this node's IP (the token guards it; league TLS is optional)."""
    from league.server import LeagueServer

    if config.league.address:
        if config.dashboard.enabled:
            log.info(
                "no dashboard: the league database is with the external league "
                "(`selfplay league serve --dashboard-port` serves one there)"
            )
        yield config.league.address, os.environ.get("SELFPLAY_LEAGUE_TOKEN")
        return
    token = os.environ.get("SELFPLAY_LEAGUE_TOKEN") or secrets.token_urlsafe(24)
    settings = config.league_settings()
    host = config.league.host
    advertise = None
    if on_cluster and host in ("127.0.0.1", "localhost"):
        import ray

        host, advertise = "0.0.0.0", ray.util.get_node_ip_address()
    server = LeagueServer(
        run_dir / "league.db",
        host=host,
        port=config.league.port,
        token=token,
        settings=settings,
    )
    server.start()
    try:
        with dashboard_for_run(run_dir, config, server.opponent_samples):
            address = server.address if advertise is None else f"{advertise}:{server.port}"
            yield address, token
    finally:
        server.stop(1.0)


@contextmanager
def dashboard_for_run(
    run_dir: Path, config: JobConfig, opponent_samples: Callable[[], Any] | None = None
) -> Iterator[str | None]:
    """Serves the league dashboard for the run (config.dashboard); yields its URL, or None
    when disabled. A taken port falls back to a free one rather than failing the run."""
    from league.dashboard import Dashboard

    cfg = config.dashboard
    if not cfg.enabled:
        yield None
        return

    def make(port: int) -> Dashboard:
        return Dashboard(
            run_dir / "league.db",
            run_dir / STATUS_FILE,
            host=cfg.host,
            port=port,
            opponent_samples=opponent_samples,
            title=run_dir.name,
            payoff_decay=config.league.payoff_decay,
        )

    dashboard = make(cfg.port)
    try:
        try:
            dashboard.start()
        except OSError as exc:
            if cfg.port == 0:
                raise
            log.warning("dashboard port %d unavailable (%s); taking a free port", cfg.port, exc)
            dashboard = make(0)
            dashboard.start()
    except OSError as exc:
        raise RunError(f"dashboard cannot listen on {cfg.host}: {exc}") from None
    log.info(
        "dashboard: %s (read-only, no login; metrics at %smetrics)", dashboard.url, dashboard.url
    )
    try:
        yield dashboard.url
    finally:
        dashboard.stop()


@contextmanager
def local_ray(num_cpus: int) -> Iterator[None]:
    import ray

    if ray.is_initialized():
        yield
        return
    for attempt in (1, 2):
        try:
            ray.init(
                # "local": always a new Ray of our own, even when another Ray runs on this
                # machine (`ray start`, which a bare ray.init() would join).
                address="local",
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


@contextmanager
def cluster_ray(address: str) -> Iterator[None]:
    """Joins a running Ray cluster as this job's driver; leaves it (not stops it) after."""
    import ray

    from cluster.control import NAMESPACE

    try:
        ray.init(
            address=address,
            namespace=NAMESPACE,
            logging_level=logging.WARNING,
            configure_logging=False,
            log_to_driver=True,
        )
    except Exception as exc:  # ConnectionError, or Ray's bare Exception on auth problems
        raise RunError(f"cannot join the Ray cluster at {address}: {exc}") from None
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
    ray_address: str | None = None,
    control: str | None = None,
) -> RunSummary:
    """Runs the job until `minutes` pass (None: until stopped). `ray_address` joins an
    existing Ray cluster ("auto" inside a submitted Ray job) instead of starting a local
    Ray; `control` names the job's mailbox actor (cluster/control.py) through which
    `selfplay status|scale|stop` reach it."""
    with run_dir_lock(run_dir):
        return _run_locked(
            config, run_dir, minutes, resume, redis_url, progress_every_s, ray_address, control
        )


def _run_locked(
    config: JobConfig,
    run_dir: Path,
    minutes: float | None,
    resume: bool,
    redis_url: str | None,
    progress_every_s: float,
    ray_address: str | None,
    control: str | None,
) -> RunSummary:
    import ray

    from cluster.learner_actor import LearnerActor
    from cluster.rollout_actor import RolloutActor

    check_job(config)
    prepare_run_dir(run_dir, config, resume)
    shapes = learner_shapes(config)
    # One learner per team (team games), or the main agent and its exploiters.
    learning = config.learners()
    n_actors = config.actors.num_actors
    cpus = max(os.cpu_count() or 1, n_actors + len(learning))
    started = time.monotonic()
    with ExitStack() as stack:
        endpoint = stack.enter_context(redis_for_run(run_dir, redis_url))
        # Ray before the league: ray.init forks its GCS and raylet from this process
        # (running Python in the child before exec), and forking while the league's
        # gRPC threads run can leave a child hung before exec; twice a local start
        # then timed out. Ray spawns its workers from the raylet, not from here.
        stack.enter_context(local_ray(cpus) if ray_address is None else cluster_ray(ray_address))
        stop_cleanly_on_signals()  # after ray.init, which installs its own SIGTERM handler
        on_cluster = ray_address is not None
        if on_cluster and redis_url is None:
            log.warning(
                "embedded Redis listens on this node only: actors Ray places on other "
                "nodes cannot reach it; pass --redis-url for a multi-node job"
            )
        league_address, token = stack.enter_context(league_for_run(run_dir, config, on_cluster))
        data = config.model_dump(mode="json")
        use_gpu = config.algorithm.device != "cpu" and ray.cluster_resources().get("GPU", 0) >= 1
        # Several learners share the one GPU if there is one.
        gpus = (1.0 / len(learning)) if use_gpu else 0
        learners = {
            lineage: LearnerActor.options(num_gpus=gpus, num_cpus=1).remote(
                data,
                endpoint,
                league_address,
                token,
                str(run_dir),
                shapes[lineage].obs_dim,
                shapes[lineage].num_actions,
                resume,
                shapes[lineage].continuous,
                lineage,
                shapes[lineage].goal_dim,
            )
            for lineage in learning
        }
        learner_runs = {lineage: learner.run.remote() for lineage, learner in learners.items()}

        def make_actor(i: int) -> Any:
            # Spread over nodes; a dead actor is restarted by Ray (fresh actor id and league
            # link; its run() is retried), and the job goes on.
            return RolloutActor.options(
                num_cpus=min(config.actors.num_cpus, 1.0),
                scheduling_strategy="SPREAD",
                max_restarts=-1,
                max_task_retries=-1,
            ).remote(data, endpoint, league_address, token, i, config.algorithm.seed * 1000 + i)

        fleet = ActorFleet(make_actor)
        fleet.scale_to(n_actors)
        mailbox = None if control is None else create_control(control, n_actors)
        client = connect(endpoint)
        streams = {t: TrajectoryStream(client, config.stream_name(t)) for t in learning}
        deadline = None if minutes is None else started + 60 * minutes
        # Short retries: the status must not stall the watch loop while a league restarts.
        league = stack.enter_context(LeagueClient(league_address, token, retry_s=2.0))
        watcher = Watcher(
            learners,
            fleet,
            streams,
            run_dir / STATUS_FILE,
            mailbox,
            lambda: len(league.players()),
            tb_dir=run_dir / "tb" / "episodes",
        )
        try:
            try:
                watcher.watch(list(learner_runs.values()), deadline, progress_every_s)
            except KeyboardInterrupt:
                print("stopping (Ctrl-C again to abort)...", file=sys.stderr)
            actor_stats = fleet.stop_all(get_or_explain)
            for learner in learners.values():
                learner.stop.remote()
            learner_stats = {t: get_or_explain(run) for t, run in learner_runs.items()}
            stream_stats = {t: stream.stats() for t, stream in streams.items()}
        except BaseException:
            watcher.finish("failed")  # so status.json readers do not wait for a dead run
            raise
        watcher.finish("stopped")
        one = len(learning) == 1
        return RunSummary(
            time.monotonic() - started,
            next(iter(learner_stats.values())) if one else learner_stats,
            actor_stats,
            next(iter(stream_stats.values())) if one else stream_stats,
            watcher.throughput(),
        )


def learner_shapes(config: JobConfig) -> dict[str, PolicyShape]:
    """Each learner's policy shape: from the goal task for a goal job (envs/goal), else
    from its team of the game."""
    task = goal_task(config.env.name)
    if task is not None:
        env = task.make(1, seed=0, **dict(config.env.kwargs))
        try:
            shape = PolicyShape(env.obs_dim, env.num_actions, env.continuous, env.goal_dim)
        finally:
            env.close()
        return dict.fromkeys(config.learners(), shape)
    env = config.env
    teams = Game(env.name, env.api, env.kwargs, config.team_prefixes()).teams
    return {lineage: teams[learning.team].shape for lineage, learning in config.learners().items()}


def stop_cleanly_on_signals() -> None:
    """SIGTERM (kill, docker stop, a scheduler) takes the same clean-stop path as Ctrl-C.
    SIGINT is re-armed too: a shell starts background jobs with SIGINT ignored, and Python
    then never raises KeyboardInterrupt."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)
        signal.signal(signal.SIGINT, signal.default_int_handler)
