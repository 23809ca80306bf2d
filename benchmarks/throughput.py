"""Raw env stepping vs our actors vs the end-to-end job, side by side in one run.

    python benchmarks/throughput.py --config configs/connect_four.yaml --seconds 60
    python benchmarks/throughput.py --config configs/sumo_disc.yaml --seconds 60

(a) raw: the bare PettingZoo env on one core (AEC or parallel API, as the config says),
    uniformly random (legal) actions, no learning, no inference, no transport: the
    ceiling for one actor process; also the same through our `Game` adapter, and, for an
    env with a batched implementation (sumo's `vector_env`), that one with the actor's
    number of games per call (the ceiling of the batched rollout worker).
(b) actors only: one rollout worker in this process with the config's envs, the real
    league and Redis transport (chunks encoded and sent), the learner's initial weights
    and no learner (a thread trims the stream so back-pressure never waits): the worker
    the job would use and, where that is the batched one, also the per-game dict worker.
(c) end to end: `selfplay run` with the same config (embedded Redis, league, learner,
    actors); rates are measured between the watcher's first and last samples, so
    start-up is excluded; over the middle of the run, the cores each process and the
    driver's threads kept busy (`benchmarks/cpu_accounting.py`).
(d) RLlib is measured by benchmarks/rllib_selfplay.py on the same config.
Prints one JSON object on stdout and a readable table on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.vector_rollout import vector_factory  # noqa: E402
from benchmarks.cpu_accounting import CpuWindow  # noqa: E402
from cluster.launcher import run_job  # noqa: E402
from core.config import JobConfig, load_config  # noqa: E402
from envs.bots import random_legal_actions  # noqa: E402
from envs.pettingzoo_adapter import Game  # noqa: E402


def raw_pettingzoo_rate(config: JobConfig, seconds: float, seed: int = 0) -> float:
    """Env steps/s of the bare AEC env with random legal moves (turn-based games)."""
    module = importlib.import_module(config.env.name.partition(":")[0])
    env = module.env(**config.env.kwargs)
    rng = np.random.default_rng(seed)
    steps, deadline = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        env.reset(seed=int(rng.integers(2**31)))
        for _agent in env.agent_iter():
            obs, _, term, trunc, _ = env.last()
            if term or trunc:
                env.step(None)
                continue
            env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
            steps += 1
    return steps / (time.perf_counter() - start)


def raw_parallel_rate(config: JobConfig, seconds: float, seed: int = 0) -> float:
    """Agent steps/s of the bare parallel env with uniform random actions (every agent
    acting is one env step, as our counters count)."""
    module = importlib.import_module(config.env.name.partition(":")[0])
    env = module.parallel_env(**config.env.kwargs)
    rng = np.random.default_rng(seed)
    spaces = {a: env.action_space(a) for a in env.possible_agents}
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.reset(seed=int(rng.integers(2**31)))
        while env.agents:
            actions = {
                a: rng.uniform(spaces[a].low, spaces[a].high).astype(spaces[a].dtype)
                if hasattr(spaces[a], "low")
                else int(rng.integers(spaces[a].n))
                for a in env.agents
            }
            env.step(actions)
            steps += len(actions)
    return steps / (time.perf_counter() - start)


def raw_vector_rate(config: JobConfig, seconds: float, seed: int = 0) -> float:
    """Agent steps/s of the env's batched implementation with the actor's number of
    games, uniform random actions in [-1, 1] (every agent of every game acts per call)."""
    factory = vector_factory(config)
    assert factory is not None
    vec = factory(config.actors.envs_per_actor, seed=seed, **config.env.kwargs)
    rng = np.random.default_rng(seed)
    shape = (vec.num_envs, 2, vec.act_dim)
    vec.reset()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            vec.step(rng.uniform(-1.0, 1.0, shape).astype(np.float32))
        steps += 50 * 2 * vec.num_envs
    return steps / (time.perf_counter() - start)


def actors_only_rate(config: JobConfig, seconds: float) -> float:
    """(b): env steps/s of one rollout worker with real transport and league, no learner."""
    import secrets
    import threading

    from actors.inference import limit_inference_threads
    from actors.league_link import LeagueLink
    from actors.policies import PolicyPool
    from actors.vector_rollout import make_rollout_worker
    from core.codec import encode_weights
    from core.config import LeagueSettings
    from core.nets import build_net
    from league.client import LeagueClient
    from league.server import LeagueServer
    from transport.redis import EmbeddedRedis, connect
    from transport.streams import TrajectoryStream
    from transport.weights import WeightStore

    limit_inference_threads(config.actors.torch_threads)  # as the Ray actor does
    lineage = config.league.learner_player
    spec = Game(config.env.name, config.env.api, config.env.kwargs).spec
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as endpoint:
        settings = LeagueSettings(
            self_play_fraction=config.league.self_play_fraction,
            builtins=config.league.builtins,
            seed=0,
        )
        server = LeagueServer(Path(tmp) / "league.db", token=token, settings=settings)
        server.start()
        client = connect(endpoint)
        league = LeagueClient(server.address, token)
        league.register_player(lineage)
        store = WeightStore(client, config.job)
        net = build_net(config.model, spec.obs_dim, spec.num_actions, spec.continuous)
        state = {k: v.detach() for k, v in net.state_dict().items()}
        version = store.next_version(lineage)
        store.publish(lineage, encode_weights(state, version, {}), expected_version=version)
        stream = TrajectoryStream(client, config.job, config.transport.max_stream_length)
        pool = PolicyPool(
            store, lineage, config.model, spec.obs_dim, spec.num_actions, spec.continuous
        )
        pool.wait_for_learner(10.0)
        link = LeagueLink(league, lineage, prefetch=config.actors.envs_per_actor)
        worker = make_rollout_worker(config, "bench-actor", pool, stream, link, seed=0)
        done = threading.Event()

        def drain() -> None:  # stands in for a learner that keeps up instantly
            while not done.is_set():
                client.xtrim(stream.key, maxlen=0)
                time.sleep(0.02)

        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        try:
            worker.run(lambda: False, max_steps=20)  # warm-up: caches, first matches
            start, steps0 = time.perf_counter(), worker.stats.env_steps
            deadline = start + seconds
            worker.run(lambda: time.perf_counter() >= deadline)
            rate = (worker.stats.env_steps - steps0) / (time.perf_counter() - start)
        finally:
            done.set()
            drainer.join()
            link.close()
            league.close()
            server.stop(0)
    return rate


def adapter_rate(config: JobConfig, seconds: float, seed: int = 0) -> float:
    """The same through our `Game` adapter (observation flattening, masks, rewards)."""
    game = Game(config.env.name, config.env.api, config.env.kwargs)
    rng = np.random.default_rng(seed)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        game.reset(seed=int(rng.integers(2**31)))
        while not game.done:
            actions: dict[str, int | np.ndarray] = {}
            for agent in game.to_act():
                _, mask = game.observe(agent)
                spec = game.teams[game.team_of[agent]]
                masks = None if mask is None else mask[None]
                action = random_legal_actions(masks, spec.num_actions, rng, 1, spec.continuous)
                actions[agent] = action[0] if spec.continuous else int(action[0])
            game.step(actions)
            steps += len(actions)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/connect_four.yaml")
    parser.add_argument("--seconds", type=float, default=60.0, help="end-to-end run length")
    parser.add_argument("--raw-seconds", type=float, default=10.0)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)

    parallel = config.env.api == "parallel"
    raw_fn = raw_parallel_rate if parallel else raw_pettingzoo_rate
    raw = raw_fn(config, args.raw_seconds)
    adapted = adapter_rate(config, args.raw_seconds)
    batched = vector_factory(config) is not None
    raw_batched = raw_vector_rate(config, args.raw_seconds) if batched else None
    actors_only = actors_only_rate(config, args.raw_seconds * 2)
    per_game_config = load_config(args.config, [*args.overrides, "actors.vector_env=false"])
    actors_per_game = actors_only_rate(per_game_config, args.raw_seconds * 2) if batched else None
    # The CPU window skips the job's start (Ray, actors, first weights: 3-10 s here) and
    # ends before its shutdown (the job trains `seconds` after its start).
    cpu_window = CpuWindow(start_after=15.0 + 0.1 * args.seconds, end_after=args.seconds - 5.0)
    with tempfile.TemporaryDirectory() as tmp:
        run_config = load_config(args.config, [*args.overrides, "dashboard.enabled=false"])
        summary = run_job(run_config, Path(tmp) / "run", args.seconds / 60, progress_every_s=5.0)
    e2e = summary.throughput
    cpu = cpu_window.result()
    result = {
        "config": args.config,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "actors": config.actors.num_actors,
        "envs_per_actor": config.actors.envs_per_actor,
        "raw_env_steps_per_s_1core": round(raw, 1),
        "adapter_env_steps_per_s_1core": round(adapted, 1),
        "raw_batched_env_steps_per_s_1core": None if raw_batched is None else round(raw_batched, 1),
        "actors_only_env_steps_per_s": round(actors_only, 1),
        "actors_only_per_game_env_steps_per_s": (
            None if actors_per_game is None else round(actors_per_game, 1)
        ),
        "e2e_env_steps_per_s": e2e.get("env_steps_per_s"),
        "e2e_learner_steps_per_s": e2e.get("learner_steps_per_s"),
        "e2e_window_seconds": e2e.get("window_seconds"),
        "ratio_e2e_env_to_raw": round(e2e.get("env_steps_per_s", 0.0) / raw, 3),
        "ratio_e2e_env_to_raw_batched": (
            None if raw_batched is None else round(e2e.get("env_steps_per_s", 0.0) / raw_batched, 3)
        ),
        "e2e_cores_used": cpu,
    }
    rows = [
        (f"raw PettingZoo ({'parallel' if parallel else 'AEC'}), random actions (1 core)", raw),
        ("our Game adapter, random actions (1 core)", adapted),
        *([("batched env (vector_env), random actions (1 core)", raw_batched)] if batched else []),
        ("our actor only: inference, chunks, Redis, league", actors_only),
        *([("our actor only, one PettingZoo env per game", actors_per_game)] if batched else []),
        ("end to end: env steps played by actors", e2e.get("env_steps_per_s", 0.0)),
        ("end to end: steps consumed by the learner", e2e.get("learner_steps_per_s", 0.0)),
    ]
    for name, rate in rows:
        print(f"{name:<52} {rate:>10,.0f} steps/s", file=sys.stderr)
    print(
        f"{'ratio end-to-end env / raw':<52} {result['ratio_e2e_env_to_raw']:>10.3f}",
        file=sys.stderr,
    )
    if cpu is not None:
        steps = max(e2e.get("env_steps_per_s", 0.0), 1.0)
        print(
            f"end to end, cores used over {cpu['window_seconds']['wall']} s "
            "(and CPU µs per env step):",
            file=sys.stderr,
        )
        for table in ("processes", "driver_threads"):
            for name, cores in cpu[table].items():
                label = name if table == "processes" else f"  driver thread {name}"
                print(
                    f"  {label:<50} {cores:>6.2f} ({cores * 1e6 / steps:,.0f} µs)", file=sys.stderr
                )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
