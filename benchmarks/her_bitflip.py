"""Bit flipping with and without hindsight relabelling, at the same budget of env steps.

    python benchmarks/her_bitflip.py --bits 40 --env-steps 2000000
    python benchmarks/her_bitflip.py --bits 20 --env-steps 2000000 --set algorithm.her.strategy=none

The job's own parts in one process: a goal rollout worker and the learner (DQN over the
hindsight replay buffer) joined by the real trajectory stream and weight store (embedded
Redis) and a league service, stepped in turns. Prints the greedy evaluation episodes'
success rate along the way (the worker's own `league.eval_fraction` share) and, at the
end, the final weights' success over `--eval-episodes` fresh episodes whose seed was never
used in training. One JSON object on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actors.goal_rollout import GoalWorker  # noqa: E402
from actors.players import Batch  # noqa: E402
from core.config import JobConfig, LeagueSettings, parse_config  # noqa: E402
from envs.goal import goal_task  # noqa: E402
from envs.pettingzoo_adapter import GameSpec  # noqa: E402
from league.client import LeagueClient  # noqa: E402
from league.server import LeagueServer  # noqa: E402
from learner.learner import Learner  # noqa: E402
from transport.redis import EmbeddedRedis  # noqa: E402
from transport.streams import TrajectoryStream  # noqa: E402
from transport.weights import WeightStore  # noqa: E402

EVAL_SEED = 10_000_019  # never a training seed


def config_for(bits: int, seed: int, overrides: list[str]) -> JobConfig:
    """configs/her_bitflip.yaml for `bits` bits (episodes of `bits` steps)."""
    data = yaml.safe_load((ROOT / "configs" / "her_bitflip.yaml").read_text())
    data["job"] = "herbench"
    data["env"]["kwargs"]["n_bits"] = bits
    data["actors"]["chunk_length"] = bits
    data["algorithm"]["seed"] = seed
    data["transport"]["max_stream_length"] = 100_000
    return parse_config(data, overrides)


def final_success(worker: GoalWorker, episodes: int) -> float:
    """Greedy episodes of the worker's current weights on fresh goals (EVAL_SEED)."""
    task = goal_task(worker.config.env.name)
    assert task is not None
    env = task.make(min(episodes, 256), seed=EVAL_SEED, **dict(worker.config.env.kwargs))
    player = worker.pool.kind.player(worker.pool.learner, torch.Generator().manual_seed(0))
    spec = GameSpec(("agent",), worker.shape.input_dim, env.num_actions, False, False, False)
    rng = np.random.default_rng(EVAL_SEED)
    obs = env.reset()
    done = successes = 0
    while done < episodes:
        inputs = np.concatenate([obs.observation, obs.desired_goal], axis=1)
        actions = player.act(Batch(inputs, None, rng, spec, (), (), greedy=True)).actions
        obs, _, terminated, truncated, info = env.step(actions)
        for g in np.flatnonzero(terminated | truncated):
            if done < episodes:
                done += 1
                successes += bool(info["is_success"][g])
    return successes / episodes


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=40)
    parser.add_argument("--env-steps", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=1000)
    parser.add_argument("--report-every", type=int, default=100_000, help="env steps")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args(argv)
    cfg = config_for(args.bits, args.seed, args.overrides)
    torch.set_num_threads(1)
    start = time.time()
    curve: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as endpoint:
        server = LeagueServer(Path(tmp) / "league.db", token="bench", settings=LeagueSettings())
        server.start()
        try:
            league = LeagueClient(server.address, "bench")
            client = endpoint.client()
            stream = TrajectoryStream(client, cfg.job, cfg.transport.max_stream_length)
            store = WeightStore(client, cfg.job)
            learner = Learner(
                cfg, Path(tmp), stream, store, league, args.bits, args.bits + 1, goal_dim=args.bits
            )
            learner.start()
            epsilon = float(getattr(cfg.algorithm, "epsilon", 0.0))
            worker = GoalWorker(cfg, "bench", store, stream, seed=args.seed, exploration=epsilon)
            worker.pool.wait_for_learner(10.0)
            last = (0, 0, 0)
            while worker.stats.env_steps < args.env_steps:
                worker.run(lambda: False, max_steps=50)
                while learner.step(block_ms=0):
                    pass
                s = worker.stats
                if s.env_steps - last[0] >= args.report_every:
                    window = s.eval_episodes - last[1]
                    rate = (s.eval_successes - last[2]) / window if window else None
                    point = {
                        "env_steps": s.env_steps,
                        "eval_success": rate,
                        "eval_episodes": window,
                        "seconds": round(time.time() - start, 1),
                    }
                    curve.append(point)
                    print(json.dumps(point), file=sys.stderr, flush=True)
                    last = (s.env_steps, s.eval_episodes, s.eval_successes)
            worker.maybe_refresh_weights(float("inf"))
            success = final_success(worker, args.eval_episodes)
        finally:
            server.stop(0)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    result = {
        "bits": args.bits,
        "strategy": cfg.algorithm.her.strategy,  # type: ignore[attr-defined]
        "seed": args.seed,
        "env_steps": worker.stats.env_steps,
        "final_success": success,
        "final_eval_episodes": args.eval_episodes,
        "gradient_steps": learner.algorithm.gradient_steps,  # type: ignore[attr-defined]
        "seconds": round(time.time() - start, 1),
        "curve": curve,
        "commit": commit,
        "machine": f"{platform.processor() or platform.machine()}",
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
