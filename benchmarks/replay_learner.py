"""Off-policy learner throughput: gradient steps per second of a goal job's algorithm
(SAC, TD3, DQN over the hindsight replay buffer), on CPU and on CUDA when present.

    .venv/bin/python benchmarks/replay_learner.py --config configs/her_fetch_push.yaml \\
        --seconds 30

The replay is filled with `--episodes` real episodes of the config's task, played by
random actions (so the buffer holds the task's own observations and goals); then the
algorithm's `update` is called with one more batch of `batch_chunks` episodes at a time,
each owing `replay_ratio x steps / batch_size` gradient steps (HER sampling and
relabelling included, as in a job), for `--seconds` per device after one warm-up call.
CUDA work is synchronised before every clock read. CPU runs use `--threads` torch
threads (1: a job's learner is a Ray actor with num_cpus=1). The stream and Redis are
left out: this is the learner's compute.

Prints one JSON object on stdout and a line per device on stderr.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.chunks import TrajectoryChunk  # noqa: E402
from core.config import JobConfig, ReplayConfig, load_config  # noqa: E402
from core.spaces import PolicyShape  # noqa: E402
from envs.goal import GoalVectorEnv, goal_task  # noqa: E402
from envs.randomization import randomized  # noqa: E402
from learner.algorithm import GRADIENT_STEPS, build_algorithm  # noqa: E402


def random_episodes(env: GoalVectorEnv, count: int, rng: np.random.Generator) -> list:
    """`count` whole episodes of `env` played by uniformly random actions, as chunks."""
    n, t = env.num_envs, env.max_steps
    out: list[TrajectoryChunk] = []
    obs = env.reset()
    while len(out) < count:
        rows: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "act", "ach", "des", "dyn")}
        for _ in range(t):
            if env.continuous:
                actions = rng.uniform(-1, 1, (n, env.num_actions)).astype(np.float32)
            else:
                actions = rng.integers(0, env.num_actions, n)
            rows["obs"].append(obs.observation)
            rows["des"].append(obs.desired_goal)
            rows["act"].append(actions)
            obs, _, _, _, _ = env.step(actions)
            rows["ach"].append(env.final_obs.achieved_goal)
            rows["dyn"].append(getattr(env, "final_dynamics", np.zeros((n, 0), np.float32)))
        final = env.final_obs.observation
        stacked = {k: np.stack(v, axis=1) for k, v in rows.items()}  # [games, T, ...]
        for g in range(n):
            out.append(
                TrajectoryChunk.of(
                    "bench",
                    "bench",
                    g,
                    len(out),
                    obs=stacked["obs"][g],
                    actions=stacked["act"][g],
                    rewards=np.full(t, -1.0, np.float32),
                    dones=np.zeros(t, bool),
                    policy_versions=np.zeros(t, np.int64),
                    bootstrap_obs=final[g],
                    desired_goal=stacked["des"][g],
                    achieved_goal=stacked["ach"][g],
                    is_success=np.zeros(t, bool),
                    dynamics=stacked["dyn"][g].astype(np.float32) if stacked["dyn"].size else None,
                )  # fmt: skip
            )
    return out[:count]


def measure(
    config: JobConfig, episodes: list, device: torch.device, seconds: float
) -> dict[str, Any]:
    """Gradient steps/s of the config's algorithm on `device` (replay prefilled)."""
    task = goal_task(config.env.name)
    assert task is not None
    probe = task.make(1, seed=0, **dict(config.env.kwargs))
    shape = PolicyShape(probe.obs_dim, probe.num_actions, probe.continuous, probe.goal_dim)
    probe.close()
    algorithm = build_algorithm(config, shape, device)
    algo = config.algorithm
    assert isinstance(algo, ReplayConfig)
    per_call = algo.batch_chunks
    filled = len(episodes) - 10 * per_call  # the rest feed the timed calls
    algorithm.replay.add(episodes[:filled])  # type: ignore[attr-defined]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    algorithm.update(episodes[filled : filled + per_call], 0)  # warm-up
    sync()
    steps = calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        k = filled + per_call * (1 + calls % 9)
        steps += int(algorithm.update(episodes[k : k + per_call], 0).get(GRADIENT_STEPS, 0))
        calls += 1
        sync()
    elapsed = time.perf_counter() - start
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "gradient_steps": steps,
        "seconds": round(elapsed, 2),
        "gradient_steps_per_s": round(steps / elapsed, 1),
        "transitions_sampled_per_s": round(steps * algo.batch_size / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/her_fetch_push.yaml")
    parser.add_argument("--episodes", type=int, default=400, help="random episodes replayed")
    parser.add_argument("--seconds", type=float, default=30.0, help="timed per device")
    parser.add_argument("--threads", type=int, default=1, help="CPU torch threads")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as the learner does
    config = load_config(args.config, args.overrides)
    task = goal_task(config.env.name)
    if task is None or not isinstance(config.algorithm, ReplayConfig):
        raise SystemExit(f"{args.config} is no goal job with an off-policy algorithm")
    env = task.make(8, seed=1, **dict(config.env.kwargs))
    if config.env.randomization is not None:  # sim2real: chunks carry each episode's physics
        env = randomized(env, config.env.randomization.train, seed=1)
    episodes = random_episodes(env, args.episodes, np.random.default_rng(1))
    env.close()
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    rows = [measure(config, episodes, d, args.seconds) for d in devices]
    for r in rows:
        print(
            f"{r['device']:>5} {r['device_name'] or '':<24} "
            f"{r['gradient_steps_per_s']:>8,.1f} gradient steps/s "
            f"({r['transitions_sampled_per_s']:,.0f} transitions/s)",
            file=sys.stderr,
        )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    print(
        json.dumps(
            {
                "config": args.config,
                "algorithm": config.algorithm.name,
                "batch_size": config.algorithm.batch_size,
                "hidden": list(config.model.hidden),
                "threads": args.threads,
                "rows": rows,
                "commit": commit,
                "machine": platform.processor() or platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
