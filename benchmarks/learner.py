"""Learner throughput: trained env steps per second of our PPO/V-trace update, and what
the wire codec costs beside it, at several batch sizes, on CPU (and CUDA when present).

    .venv/bin/python benchmarks/learner.py --config configs/connect_four.yaml \\
        configs/sumo_disc.yaml --batch-steps 1024 4096 16384 65536 --updates 3

Per config (env spec from the config's `Game`: connect_four obs 84 / 7 masked actions,
sumo discs and bugs obs 34 / 2-D continuous actions; MLP, epochs and minibatches from the
config) and per batch size (batch_chunks x the config's chunk_length steps), it builds
synthetic but realistic chunks (binary board planes with legal-move masks for masked
games, Gaussian observations otherwise; actions, log-probs and values from the freshly
built net's own `act`, so V-trace ratios start near 1; episode ends and terminal rewards
at game-like rates), then for each device times, per learner step:
- decode: `decode_chunk` of every chunk's safetensors bytes (validation included), the
  learner's side of the codec (`encode_chunk`, the actor's side, is timed too but is not
  part of the learner step);
- stack: `stack_chunks` (learner/learner.py: numpy stack to time-major, host -> device);
- update: `update` (learner/ppo_vtrace.py: V-trace targets, epochs x minibatches of SGD);
- publish encode: `encode_weights` of the state dict (learner.publish; the Redis write
  itself is not timed).
CPU runs use `--threads` torch threads (default 1: inside a job the learner is a Ray
actor with num_cpus=1, and Ray sets OMP_NUM_THREADS=1 for it). One warm-up step first
(allocator, CUDA context, kernels), then `--updates` timed steps; CUDA work is
synchronised before every clock read. The Redis round trips (XREADGROUP,
XACK, the weight SET) are left out: this is the learner's compute, not its transport.

This measures the on-policy PPO/V-trace learner; the off-policy ones (goal jobs) are
measured by benchmarks/replay_learner.py.

Prints one JSON object on stdout and a readable table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.chunks import ChunkSpec, TrajectoryChunk, job_chunk_spec  # noqa: E402
from core.codec import decode_chunk, encode_chunk, encode_weights  # noqa: E402
from core.config import JobConfig, load_config  # noqa: E402
from core.nets import PolicyValueNet, act, build_net  # noqa: E402
from envs.pettingzoo_adapter import Game, GameSpec  # noqa: E402
from learner.ppo_vtrace import (
    stack_chunks,  # noqa: E402
    update,  # noqa: E402
)

JOB = "bench"
STAGES = ("decode", "stack", "update", "publish_encode")


def game_spec(config: JobConfig) -> GameSpec:
    """The (first) learning team's spec of the config's game."""
    teams = Game(config.env.name, config.env.api, config.env.kwargs, config.team_prefixes()).teams
    learning = next(iter(config.learners().values()))
    return teams[learning.team]


def chunk_spec(config: JobConfig, spec: GameSpec) -> ChunkSpec:
    return job_chunk_spec(config, spec.shape)


def synthetic_chunks(
    net: PolicyValueNet, spec: GameSpec, num_chunks: int, chunk_length: int, seed: int = 0
) -> list[TrajectoryChunk]:
    """`num_chunks` chunks that look like an actor's: masked games get 0/1 board planes
    and masks with a legal move or more, episodes of ~11 decisions per seat and terminal
    rewards in {-1, 0, 1}; continuous games Gaussian observations, small dense rewards,
    episodes of ~200 steps. Actions, log-probs and values come from `net` itself."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    n, d, t = num_chunks * chunk_length, spec.obs_dim, chunk_length
    masked = not spec.continuous
    if masked:
        obs = (rng.random((n, d)) < 0.3).astype(np.float32)
        mask = rng.random((n, spec.num_actions)) < 0.85
        mask[np.arange(n), rng.integers(0, spec.num_actions, n)] = True
        episode = 11.0
    else:
        obs = rng.standard_normal((n, d), dtype=np.float32)
        mask = None
        episode = 200.0
    actions, logp, values = [], [], []
    for lo in range(0, n, 8192):  # the actor's batched inference, in pieces
        part_mask = None if mask is None else mask[lo : lo + 8192]
        a, lp, v = act(net, obs[lo : lo + 8192], part_mask, gen)
        actions.append(a)
        logp.append(lp)
        values.append(v)
    act_all, logp_all, val_all = (np.concatenate(x) for x in (actions, logp, values))
    dones = rng.random(n) < 1.0 / episode
    if masked:
        rewards = np.where(dones, rng.choice([-1.0, 0.0, 1.0], n), 0.0).astype(np.float32)
    else:
        shaping = rng.normal(0.0, 0.01, n)
        rewards = np.where(dones, rng.choice([-1.0, -0.5, 1.0], n), shaping).astype(np.float32)
    bootstrap = (
        (rng.random((num_chunks, d)) < 0.3).astype(np.float32)
        if masked
        else rng.standard_normal((num_chunks, d), dtype=np.float32)
    )
    chunks = []
    for i in range(num_chunks):
        s = slice(i * t, (i + 1) * t)
        version = 100 - int(rng.integers(0, 3))  # a lag of 0-2 versions
        chunks.append(
            TrajectoryChunk.of(
                obs=obs[s].copy(),
                action_mask=None if mask is None else mask[s].copy(),
                actions=act_all[s].copy(),
                rewards=rewards[s].copy(),
                dones=dones[s].copy(),
                behaviour_logp=logp_all[s].copy(),
                values=val_all[s].copy(),
                policy_versions=np.full(t, version, np.int64),
                bootstrap_obs=bootstrap[i].copy(),
                job=JOB,
                actor_id="actor0-bench",
                env_index=i,
                sequence=0,
            )
        )
    return chunks


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def bench_batch(
    config: JobConfig,
    spec: GameSpec,
    payloads: list[bytes],
    device: torch.device,
    updates: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Times `updates` learner steps (after one warm-up) over the encoded chunks."""
    cspec = chunk_spec(config, spec)
    torch.manual_seed(seed)
    net = build_net(config.model, spec.obs_dim, spec.num_actions, spec.continuous).to(device)
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.algorithm.lr, eps=1e-5)
    gen = torch.Generator().manual_seed(seed)
    totals = dict.fromkeys(STAGES, 0.0)

    def decode() -> list[TrajectoryChunk]:
        return [decode_chunk(p, cspec, job=JOB) for p in payloads]

    def publish(version: int) -> bytes:  # learner.publish up to the Redis write
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        return encode_weights(state, version, {"published_unix": repr(time.time())})

    for i in range(updates + 1):
        chunks, t_decode = _timed(decode, device)
        batch, t_stack = _timed(lambda c=chunks: stack_chunks(c, device), device)
        _, t_update = _timed(
            lambda b=batch: update(net, optimizer, b, config.algorithm, gen), device
        )
        _, t_publish = _timed(lambda v=i + 1: publish(v), device)
        if i == 0:
            continue  # warm-up
        for stage, seconds in zip(STAGES, (t_decode, t_stack, t_update, t_publish), strict=True):
            totals[stage] += seconds
    steps = len(payloads) * config.actors.chunk_length
    per_step = {k: v / updates for k, v in totals.items()}
    full = sum(per_step.values())
    return {
        "device": str(device),
        "batch_steps": steps,
        "batch_chunks": len(payloads),
        "updates_timed": updates,
        "seconds_per_step": {k: round(v, 5) for k, v in per_step.items()},
        "update_samples_per_s": round(steps / per_step["update"], 1),
        "learner_step_samples_per_s": round(steps / full, 1),
        "share": {k: round(v / full, 4) for k, v in per_step.items()},
    }


def bench_config(
    path: str,
    config: JobConfig,
    batch_steps: list[int],
    devices: list[torch.device],
    updates: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Every batch size on every device for one config; chunks are built once (largest)."""
    spec = game_spec(config)
    t = config.actors.chunk_length
    sizes = sorted({max(1, s // t) for s in batch_steps})
    net = build_net(config.model, spec.obs_dim, spec.num_actions, spec.continuous).eval()
    chunks = synthetic_chunks(net, spec, sizes[-1], t, seed)
    t0 = time.perf_counter()
    payloads = [encode_chunk(c) for c in chunks]
    encode_s_per_chunk = (time.perf_counter() - t0) / len(chunks)
    rows = []
    for device in devices:
        for n in sizes:
            row = bench_batch(config, spec, payloads[:n], device, updates, seed)
            row["actor_encode_seconds"] = round(encode_s_per_chunk * n, 5)
            rows.append(row)
    alg, model = config.algorithm, config.model
    return {
        "config": path,
        "job": config.job,
        "obs_dim": spec.obs_dim,
        "num_actions": spec.num_actions,
        "continuous": spec.continuous,
        "model": f"{model.kind} {'x'.join(map(str, model.hidden))} {model.activation}",
        "epochs": alg.epochs,
        "minibatches": alg.minibatches,
        "chunk_length": t,
        "chunk_bytes": len(payloads[0]),
        "rows": rows,
    }


def print_table(result: dict[str, Any]) -> None:
    for cfg in result["configs"]:
        print(
            f"\n{cfg['job']}: obs {cfg['obs_dim']}, "
            f"{'continuous' if cfg['continuous'] else 'discrete'} actions {cfg['num_actions']}, "
            f"{cfg['model']}, {cfg['epochs']} epochs x {cfg['minibatches']} minibatches, "
            f"chunk {cfg['chunk_length']} steps ({cfg['chunk_bytes']:,} bytes)",
            file=sys.stderr,
        )
        head = (
            f"{'device':<7}{'batch':>8}{'update/s':>12}{'step/s':>12}"
            f"{'decode':>8}{'stack':>7}{'update':>8}{'pub':>6}{'encode(actor)':>15}"
        )
        print(head, file=sys.stderr)
        for r in cfg["rows"]:
            sh = r["share"]
            print(
                f"{r['device']:<7}{r['batch_steps']:>8,}{r['update_samples_per_s']:>12,.0f}"
                f"{r['learner_step_samples_per_s']:>12,.0f}{sh['decode']:>8.1%}"
                f"{sh['stack']:>7.1%}{sh['update']:>8.1%}{sh['publish_encode']:>6.1%}"
                f"{1000 * r['actor_encode_seconds']:>12.1f} ms",
                file=sys.stderr,
            )
    print(
        "\nupdate/s: samples/s of update() alone; step/s: of decode + stack + update + "
        "publish encode (Redis round trips excluded); shares are of that step's time.",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", default=["configs/connect_four.yaml"])
    parser.add_argument("--batch-steps", nargs="+", type=int, default=[1024, 4096, 16384, 65536])
    parser.add_argument("--updates", type=int, default=3, help="timed steps after 1 warm-up")
    parser.add_argument(
        "--devices", nargs="+", default=None, help="default: cpu, and cuda when available"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1, as in a job: Ray sets OMP_NUM_THREADS to the "
        "learner actor's num_cpus=1); 0 keeps torch's default (all cores)",
    )
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    devices = [torch.device(n) for n in names]
    configs = [
        bench_config(
            path, load_config(path, args.overrides), args.batch_steps, devices, args.updates
        )
        for path in args.config
    ]
    result = {
        "learner": "ppo_vtrace (the only learner in the repo; no off-policy learner yet)",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "configs": configs,
    }
    print_table(result)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
