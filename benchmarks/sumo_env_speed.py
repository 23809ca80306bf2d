"""Sumo env speed: env.step against a bare mj_step loop on the same model, one core.

    python benchmarks/sumo_env_speed.py [--rounds 3] [--sizes 1 16 64 256 512] [--bodies bug/bug]

For each body pair (disc/disc, bug/bug, ant/ant) and number of games N, one round times,
back to back:
- env: `SumoVector(N, autoreset=True).step` with uniform random float32 actions (episodes
  end and restart inside the timed block, as in a rollout worker);
- physics: the bare loop `d.ctrl[:] = u; mujoco.mj_step(m, d, nstep=FRAME_SKIP)` on the env's
  own model (all N games in one MjModel) and a copy of its MjData taken at the start of the
  block, replaying the controls the env applied (physics cost depends on them). The overhead
  figures are against this;
- separate: the same N games as N one-game MjData stepped from a Python loop (how the env
  stepped before its games shared one model), to show what sharing the model saves;
and `SumoEnv.step` (the PettingZoo dict API, one game; resets included) against the bare
loop on its one-game model.

One control step of one game is one env step. Python overhead per control step = env time -
physics time, per game, in microseconds and as % of physics time. Times are this process's
CPU time (time.process_time), so a shared machine's other work does not count while it runs
instead of us (it still competes for caches); wall-clock figures are in the JSON too. Each
round interleaves short blocks of every measurement, and each figure is the median over
rounds of values measured within one round, so a ratio never mixes two load levels. Prints
one JSON object on stdout and a table on stderr.
"""

from __future__ import annotations

import os

# One core: no BLAS/OpenMP thread pools (numpy stays single-threaded; MuJoCo is anyway).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import NamedTuple  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs.sumo import SumoEnv  # noqa: E402
from envs.sumo.model import FRAME_SKIP, build_xml  # noqa: E402
from envs.sumo.vector import SumoVector  # noqa: E402

BODIES = (("disc", "disc"), ("bug", "bug"), ("ant", "ant"))
GAME_STEPS = {"disc": 300_000, "bug": 300_000, "ant": 4_000}  # per measurement and round
WARMUP_STEPS = 60  # control steps of every game before timing: mid-game, not fresh states
STATE = mujoco.mjtState.mjSTATE_INTEGRATION  # everything mj_step reads, warm start included


def _timed(fn: Callable[[], None], calls: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of `calls` calls."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        fn()
    return time.process_time() - cpu, time.perf_counter() - wall


class _Restarts(NamedTuple):
    """Games the env restarted: their rows and the states it started them in."""

    rows: np.ndarray
    qpos: np.ndarray  # (len(rows), nq per game)
    qvel: np.ndarray


class _Step(NamedTuple):
    """One recorded control step: the restarts to apply before it, then its controls."""

    restarts: _Restarts | None
    controls: np.ndarray  # (N, nu per game)


def _restarts(qpos: np.ndarray, qvel: np.ndarray, rows: np.ndarray) -> _Restarts | None:
    """The restarted games' states as they are now ((N, per game) views), if any."""
    return _Restarts(rows, qpos[rows].copy(), qvel[rows].copy()) if len(rows) else None


class _Replay:
    """Bare physics from the env's state, replaying recorded controls: either on a copy of
    the env's (N-game) MjData, or on N one-game MjData (`games` > 0) stepped in a loop.

    Where the env restarted a game, the replay writes that game's new start state too
    (qpos, qvel, a cleared warm start), so it steps the same games the env stepped;
    without it a finished game would play on out of its ring, without contacts, and make
    the baseline cheaper than the env's own physics. The writes cost ~1 us per restart,
    counted as physics."""

    def __init__(self, model: mujoco.MjModel, games: int = 0) -> None:
        self.model, self.games = model, games
        self.datas = [mujoco.MjData(model) for _ in range(max(games, 1))]
        self.recorded: list[_Step] = []
        self.k = 0

    def start(self, env_model: mujoco.MjModel, env_data: mujoco.MjData) -> None:
        """Copy the env's state: whole, or game by game (blocks of qpos, qvel, warm start)."""
        self.k = 0
        if not self.games:
            buf = np.empty(mujoco.mj_stateSize(env_model, STATE))
            mujoco.mj_getState(env_model, env_data, buf, STATE)
            mujoco.mj_setState(self.model, self.datas[0], buf, STATE)
            return
        n = self.games
        for field in ("qpos", "qvel", "qacc_warmstart"):
            rows = getattr(env_data, field).reshape(n, -1)
            for i, d in enumerate(self.datas):
                getattr(d, field)[:] = rows[i]

    def _restart(self, r: _Restarts) -> None:
        if not self.games:
            d = self.datas[0]
            n = len(self.recorded[0].controls)
            d.qpos.reshape(n, -1)[r.rows] = r.qpos
            d.qvel.reshape(n, -1)[r.rows] = r.qvel
            d.qacc_warmstart.reshape(n, -1)[r.rows] = 0.0
            return
        for i, qpos, qvel in zip(r.rows, r.qpos, r.qvel, strict=True):
            d = self.datas[i]
            d.qpos[:], d.qvel[:], d.qacc_warmstart[:] = qpos, qvel, 0.0

    def __call__(self) -> None:
        m, step, (restarts, u) = self.model, mujoco.mj_step, self.recorded[self.k]
        if restarts is not None:
            self._restart(restarts)
        if not self.games:
            d = self.datas[0]
            d.ctrl[:] = u.ravel()
            step(m, d, FRAME_SKIP)
        else:
            for d, row in zip(self.datas, u, strict=True):
                d.ctrl[:] = row
                step(m, d, FRAME_SKIP)
        self.k += 1


BLOCKS = 5  # each round interleaves this many short blocks of every measurement


def _summary(per_round: dict[str, list[float]]) -> dict[str, float]:
    result = {key: statistics.median(v) for key, v in per_round.items()}
    result["env_steps_per_s"] = 1e6 / result["env_us"]
    result["physics_steps_per_s"] = 1e6 / result["physics_us"]
    return result


def _rounds(
    rounds: int, one_block: Callable[[], dict[str, tuple[float, float]]], steps: int
) -> dict[str, float]:
    """Medians over `rounds` rounds of BLOCKS interleaved blocks; `one_block` times every
    measurement once ((cpu, wall) seconds each); a round covers `steps` game-steps."""
    per_round: dict[str, list[float]] = {}
    for _ in range(rounds):
        cpu: Counter[str] = Counter()
        wall: Counter[str] = Counter()
        for _ in range(BLOCKS):
            for name, (c, w) in one_block().items():
                cpu[name] += c
                wall[name] += w
        _add_round(per_round, cpu, wall, steps)
    return _summary(per_round)


def _add_round(
    per_round: dict[str, list[float]], cpu: Counter[str], wall: Counter[str], steps: int
) -> None:
    """Per game-step microseconds and overheads of one round (`steps` game-steps each)."""
    us = {f"{key}_us": t / steps * 1e6 for key, t in cpu.items()}
    us.update({f"{key}_wall_us": t / steps * 1e6 for key, t in wall.items()})
    us["overhead_us"] = us["env_us"] - us["physics_us"]
    us["overhead_pct"] = 100.0 * us["overhead_us"] / us["physics_us"]
    if "separate_us" in us:
        us["env_speedup_vs_separate"] = us["separate_us"] / us["env_us"]
    us["overhead_wall_pct"] = 100.0 * (us["env_wall_us"] / us["physics_wall_us"] - 1.0)
    for key, value in us.items():
        per_round.setdefault(key, []).append(value)


def _env_then_replays(
    env_step: Callable[[], None],
    replays: dict[str, _Replay],
    model: mujoco.MjModel,
    data: mujoco.MjData,
    recorded: list[_Step],
    block: int,
) -> dict[str, tuple[float, float]]:
    """One block: `block` env steps (recording their controls), then every baseline from
    the env's starting state replaying those controls; (cpu, wall) seconds each."""
    for replay in replays.values():
        replay.start(model, data)
    recorded.clear()
    times = {"env": _timed(env_step, block)}
    for name, replay in replays.items():
        replay.recorded = recorded
        times[name] = _timed(replay, block)
    return times


def measure_vector(bodies: tuple[str, str], n: int, rounds: int) -> dict[str, float]:
    vec = SumoVector(n, bodies=bodies, seed=0, autoreset=True)
    vec.reset(seeds=list(range(n)))
    m = vec.model
    one_game = mujoco.MjModel.from_xml_string(build_xml(bodies))
    replays = {"physics": _Replay(m), "separate": _Replay(one_game, n)}
    rng = np.random.default_rng(0)
    pool = rng.uniform(-1, 1, (16, n, 2, vec.act_dim)).astype(np.float32)
    block = max(2, GAME_STEPS[bodies[0]] // (n * BLOCKS))  # control steps per block
    recorded: list[_Step] = []
    pending: list[_Restarts | None] = [None]  # restarts of the last step, for the next

    def env_step() -> None:
        if not recorded:  # a block starts from a copy of the env's state: restarts in it
            pending[0] = None
        _, _, terminated, truncated = vec.step(pool[len(recorded) % len(pool)])
        recorded.append(_Step(pending[0], vec.last_controls.copy()))  # to replay the same
        pending[0] = _restarts(vec.qpos, vec.qvel, np.flatnonzero(terminated | truncated))

    for _ in range(WARMUP_STEPS):
        env_step()

    def one_block() -> dict[str, tuple[float, float]]:
        return _env_then_replays(env_step, replays, m, vec.data, recorded, block)

    return _rounds(rounds, one_block, BLOCKS * block * n)


def measure_pettingzoo(bodies: tuple[str, str], rounds: int) -> dict[str, float]:
    env = SumoEnv(bodies=bodies, seed=0)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    pool = [
        {a: rng.uniform(-1, 1, env.action_space(a).shape).astype(np.float32) for a in env.agents}
        for _ in range(16)
    ]
    block = GAME_STEPS[bodies[0]] // (2 * BLOCKS)
    recorded: list[_Step] = []
    replays = {"physics": _Replay(env.model)}
    game = np.zeros(1, np.int64)

    def env_step() -> None:
        restarts = None
        if not env.agents:
            env.reset()
            restarts = _restarts(env.data.qpos[None], env.data.qvel[None], game)
        env.step(pool[len(recorded) % len(pool)])
        recorded.append(_Step(restarts, env.data.ctrl[None].copy()))

    for _ in range(WARMUP_STEPS):
        env_step()

    def one_block() -> dict[str, tuple[float, float]]:
        return _env_then_replays(env_step, replays, env.model, env.data, recorded, block)

    return _rounds(rounds, one_block, BLOCKS * block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256, 512])
    parser.add_argument(
        "--bodies", nargs="+", default=["/".join(b) for b in BODIES], help="e.g. bug/bug"
    )
    args = parser.parse_args()

    results: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_start": os.getloadavg(),
        "mujoco": mujoco.__version__,
        "numpy": np.__version__,
        "rounds": args.rounds,
    }
    table = []
    for name in args.bodies:
        bodies = tuple(name.split("/"))
        for n in args.sizes:
            r = measure_vector(bodies, n, args.rounds)
            results[f"{name} SumoVector N={n}"] = {k: round(v, 3) for k, v in r.items()}
            table.append((name, f"SumoVector N={n}", r))
        r = measure_pettingzoo(bodies, args.rounds)
        results[f"{name} SumoEnv"] = {k: round(v, 3) for k, v in r.items()}
        table.append((name, "SumoEnv (dict API)", r))
    results["load_average_at_end"] = os.getloadavg()

    print(
        f"{'bodies':<9} {'what':<19} {'env steps/s':>11} {'physics/s':>10} {'env us':>7} "
        f"{'phys us':>7} {'overhead us':>11} {'% phys':>6} {'separate us':>11}",
        file=sys.stderr,
    )
    for name, what, r in table:
        print(
            f"{name:<9} {what:<19} {r['env_steps_per_s']:>11,.0f} "
            f"{r['physics_steps_per_s']:>10,.0f} {r['env_us']:>7.2f} {r['physics_us']:>7.2f} "
            f"{r['overhead_us']:>11.2f} {r['overhead_pct']:>5.0f}% "
            f"{r.get('separate_us', float('nan')):>11.2f}",
            file=sys.stderr,
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
