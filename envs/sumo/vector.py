"""N independent sumo games stepped by one Python call: the core behind `SumoEnv`.

`SumoEnv` (the PettingZoo API, one game) is a thin wrapper over `SumoVector(num_envs=1)`, so
the rules (envs/sumo/rules.py), observations (envs/sumo/observation.py) and rewards live in
one place and a rollout worker can step many games with numpy arrays in and out, no dicts.

Why this shape. All N games live in one MjModel (envs/sumo/model.py: one arena per game
on a grid), so one `mj_step` advances them all and there is no Python per game: for the
cheap bodies MuJoCo's fixed cost per call outweighs one game's physics, and stepping N
one-game MjData from a Python loop was ~5x slower per game (disc, N=256). After the step,
each MjData field the observation needs (sensordata, qvel, cfrc_ext, and qpos for ants) is
one (N, per game) view; everything else (headings, rules, rewards, observations) is numpy
over all games at once (envs/sumo/observation.py: BatchObserver). Sensors in the model put
the torso poses and the "agents touch" test into sensordata, so one read replaces several
fields and the contact scan. Measured figures: BENCHMARKS.md, "Sumo env speed".

Games are independent but their arenas sit at different world coordinates, so game g is
not bit-identical to a lone game (model.py); game 0 is: `SumoEnv` (one game) plays exactly
like game 0 of any `SumoVector` with the same seed.

Direct writes: after changing a game's state in `data` (as tests do; `qpos[i]` and
`qvel[i]` are game i's rows), run mj_forward and call `sync(i)`, or use `set_torso_xy`; the
next step's shaping starts from, and the disc forces turn by, the geometry derived at the
last step, reset or sync.

Seeding: game i's generator is `default_rng(seed + i)` (entropy when seed is None), so game i
of `SumoVector(n, seed=s)` starts its episodes (ring radius, start poses) exactly like
`SumoEnv(seed=s + i)`; `reset(seeds)` and `reset_one(i, seed)` reseed as
`SumoEnv.reset(seed=...)` does.

Episode ends. `step()` returns the final observation and rewards of a game on the step it
ends, with `winner`, `loser`, `reason` (codes into rules.REASONS) and `reward_terms` set for
its row. What happens next depends on `autoreset`:
- False (default; what SumoEnv uses): a finished game stays finished until `reset_one(i)` or
  `reset()`. Its agents get no control (they coast to a stop in their arena), its row
  repeats the final observation, its reward is 0, and its `terminated` / `truncated` flags
  stay set, so callers can keep stepping the others.
- True (for rollout workers): a game that ends is reset inside the same `step()` call (its
  generator continues, as for `SumoEnv.reset()` without a seed). The returned row is the new
  episode's first observation; `final_obs` holds the finished episode's last one. Flags,
  rewards and outcome arrays of that row describe the step that ended the old episode.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from envs.sumo.model import (
    BODY_SPECS,
    FRAME_SKIP,
    agent_prefix,
    arena_origins,
    arena_spacing,
    build_xml,
    game_prefix,
)
from envs.sumo.observation import (
    AgentIndex,
    BatchObserver,
    Geometry,
    bug_thrust_to_world,
    disc_forces_to_world,
    index_agent,
)
from envs.sumo.rules import (
    ONGOING,
    REASONS,
    TIME_LIMIT,
    ShapingWeights,
    judge_batch,
    shaping_terms,
    shaping_weight,
    sparse_rewards_batch,
)
from envs.sumo.start import place_agents

# Games in one model. MuJoCo sizes a model's scratch memory faster than linearly in its
# bodies (1024 disc games asked for 680 MB in collision detection; 512 ant games reserve
# 9 GB), and past a few hundred games there is nothing left to gain per call.
MAX_GAMES = 512
TERM_NAMES = ("approach", "push", "upright", "sparse")


class SumoVector:
    """`num_envs` independent two-agent sumo games (see the module docstring).

    Arrays are indexed [game, seat] where they are per agent; seat 0 is "agent_0". With mixed
    bodies the two seats' observation / action sizes differ (`obs_sizes`, `act_sizes`): the
    arrays use the larger size, observations are zero-padded at the end and the extra action
    entries of the smaller body are ignored.
    """

    def __init__(
        self,
        num_envs: int,
        bodies: tuple[str, str] = ("disc", "disc"),
        ring_radius: tuple[float, float] | None = None,
        max_steps: int | None = None,
        shaping_steps: int = 1_000_000,
        draw_reward: float = 0.0,
        shaping: ShapingWeights | None = None,
        seed: int | None = None,
        autoreset: bool = False,
    ) -> None:
        if not 1 <= num_envs <= MAX_GAMES:
            raise ValueError(
                f"num_envs must be between 1 and {MAX_GAMES}, got {num_envs} (use several "
                "SumoVector objects for more games)"
            )
        bodies = tuple(bodies)  # type: ignore[assignment]
        if len(bodies) != 2:
            raise ValueError("bodies must name two body types")
        specs = [BODY_SPECS[b] for b in bodies]
        # Defaults follow the larger body so the ring fits it (ant ranges for any ant match).
        big = max(specs, key=lambda s: s.default_radius[1])
        self.num_envs = num_envs
        self.bodies = bodies
        self.ring_radius = tuple(ring_radius) if ring_radius is not None else big.default_radius
        self.max_steps = max_steps or max(s.default_max_steps for s in specs)
        self.shaping_steps = shaping_steps
        self.draw_reward = draw_reward
        self.weights = shaping or ShapingWeights()
        self.autoreset = autoreset
        self._specs = specs

        spacing = arena_spacing(self.ring_radius)
        m = self.model = mujoco.MjModel.from_xml_string(
            build_xml(bodies, num_games=num_envs, spacing=spacing)
        )
        d = self.data = mujoco.MjData(m)
        self.origins = arena_origins(num_envs, spacing)  # (N, 2) ring centres
        self.idx: tuple[AgentIndex, AgentIndex] = (  # game 0's; every game's row layout
            index_agent(m, agent_prefix(0)),
            index_agent(m, agent_prefix(1)),
        )
        self._check_game_blocks()
        self.observer = BatchObserver(m, self.idx, num_envs)
        self.obs_sizes = self.observer.obs_sizes
        self.obs_dim = self.observer.obs_dim
        self.act_sizes = tuple(i.num_actions for i in self.idx)
        self.act_dim = max(self.act_sizes)
        self._disc_seat_ids = [k for k, i in enumerate(self.idx) if not i.oriented]
        self._bug_seat_ids = [k for k, b in enumerate(bodies) if b == "bug"]
        nu = m.nu // num_envs
        # Actuator inputs (N, 2 * width) -> ctrl (N, nu): which input drives each actuator.
        # Inputs are the actions, except a bug's (thrust, turn) -> (force x, force y, turn).
        self._input_width = max(self.act_dim, 3) if self._bug_seat_ids else self.act_dim
        take = np.zeros(nu, np.int64)
        for k, idx in enumerate(self.idx):
            count = idx.actuators.stop - idx.actuators.start
            take[idx.actuators] = k * self._input_width + np.arange(count)
        identity = np.array_equal(take, np.arange(2 * self._input_width))
        self._act_take = None if identity else take
        self._can_fall = np.array([s.fall_height is not None for s in specs])
        self._any_can_fall, self._all_can_fall = bool(self._can_fall.any()), all(self._can_fall)
        self._never_fall = np.zeros((num_envs, 2), bool)
        # A body that cannot fall gets -inf: no torso height is below it.
        self._fall_height = np.array(
            [-np.inf if s.fall_height is None else s.fall_height for s in specs]
        )
        # (N, per game) views of MjData's arrays: row i is game i's block (model.py).
        n = num_envs
        self.qpos = d.qpos.reshape(n, -1)
        self.qvel = d.qvel.reshape(n, -1)
        self._qpos0 = m.qpos0.reshape(n, -1)
        self._warmstart = d.qacc_warmstart.reshape(n, -1)
        self._sensordata = d.sensordata.reshape(n, -1)
        self._cfrc = d.cfrc_ext[1:].reshape(n, -1)  # without the world body's row
        self._ctrl = d.ctrl.reshape(n, -1)
        self._ctrl_buf = np.zeros((n, nu))
        # Torso xy sensors are world positions; rows minus this are relative to the ring.
        self._xy_origin = np.tile(self.origins, 2)

        self._rngs = [
            np.random.default_rng(None if seed is None else seed + i) for i in range(num_envs)
        ]
        n = num_envs
        self.radius = np.full(n, float(self.ring_radius[0]))  # this episode's ring radius
        self.steps = np.zeros(n, np.int64)  # control steps in this episode
        self.total_steps = np.zeros(n, np.int64)  # across episodes; drives the shaping anneal
        self.touched = np.zeros(n, bool)  # the agents touched at some step of this episode
        self.touching = np.zeros(n, bool)  # ... at the end of the last step
        self.terminated = np.zeros(n, bool)
        self.truncated = np.zeros(n, bool)
        # Outcome of the last step per game (rules.Verdicts plus TIME_LIMIT); -1: no agent.
        self.reason = np.zeros(n, np.int8)
        self.winner = np.full(n, -1, np.int8)
        self.loser = np.full(n, -1, np.int8)
        self.reward_terms: dict[str, np.ndarray] = {k: np.zeros((n, 2)) for k in TERM_NAMES}
        self.shaping_weight = np.zeros(n)  # the anneal weight applied at the last step
        self.final_obs = np.zeros((n, 2, self.obs_dim), np.float32)
        # Derived from the state after the last step / reset; the "before" of the next step.
        self._radial = np.zeros((n, 2))
        self._gap = np.zeros(n)
        # cos and sin of the headings the agents last observed: their frames (disc forces).
        self._cos, self._sin = np.ones((n, 2)), np.zeros((n, 2))
        self._unstarted = set(range(n))  # games never reset: nothing to step yet

    def _check_game_blocks(self) -> None:
        """Every MjData array must hold the games as equal blocks in game order (model.py):
        the (N, per game) views rely on it. Checked on game 1 against game 0."""
        m, n = self.model, self.num_envs
        sizes = (m.nq, m.nv, m.nu, m.nbody - 1, m.nsensordata)
        if any(size % n for size in sizes):
            raise AssertionError(f"model arrays {sizes} do not split into {n} games")
        if n == 1:
            return
        nq, nv, nb = m.nq // n, m.nv // n, (m.nbody - 1) // n
        for k, game0 in enumerate(self.idx):
            game1 = index_agent(m, game_prefix(1) + agent_prefix(k))
            if not (
                game1.torso_body == game0.torso_body + nb
                and np.array_equal(game1.root_qpos, game0.root_qpos + nq)
                and np.array_equal(game1.hinge_qvel, game0.hinge_qvel + nv)
                and game1.actuators.start == game0.actuators.start + m.nu // n
            ):
                raise AssertionError("game 1's block does not repeat game 0's layout")

    # -- episodes ---------------------------------------------------------------------------

    @property
    def done(self) -> np.ndarray:
        """(N,) games that ended and await a reset (always False with autoreset)."""
        return self.terminated | self.truncated

    @property
    def last_controls(self) -> np.ndarray:
        """(N, nu) the MjData.ctrl values the last step set (a view; do not modify); rows of
        finished games, which were not stepped, hold values that were not applied."""
        return self._ctrl_buf

    def reason_name(self, i: int) -> str:
        """Why game i ended at the last step ("" while it goes on), as SumoEnv reports it."""
        return REASONS[self.reason[i]]

    def reset(self, seeds: Sequence[int | None] | None = None) -> np.ndarray:
        """Start a new episode in every game; returns (N, 2, obs_dim) observations."""
        if seeds is not None and len(seeds) != self.num_envs:
            raise ValueError(f"need {self.num_envs} seeds, got {len(seeds)}")
        for i in range(self.num_envs):
            self._reset_game(i, None if seeds is None else seeds[i])
        self._forward_positions()
        self._clear_outcome(slice(None))
        return self._refresh(None, fresh=True)

    def reset_one(self, i: int, seed: int | None = None) -> np.ndarray:
        """Start a new episode in game i; returns its (2, obs_dim) observations."""
        self._reset_game(i, seed)
        self._forward_positions()
        self._clear_outcome(slice(i, i + 1))
        return self._refresh(np.array([i]), fresh=True)[0]

    def _clear_outcome(self, rows: slice) -> None:
        self.reason[rows], self.winner[rows], self.loser[rows] = ONGOING, -1, -1

    def _reset_game(self, i: int, seed: int | None) -> None:
        """Start game i's next episode in MjData; call `_forward_positions` before reading."""
        if seed is not None:
            self._rngs[i] = np.random.default_rng(seed)
        qpos, qvel = self.qpos[i], self.qvel[i]
        qpos[:] = self._qpos0[i]
        qvel[:] = 0.0
        self._warmstart[i] = 0.0  # as mj_resetData: the solver starts this game afresh
        self._cfrc[i] = 0.0  # no contact yet (the next step's mj_rnePostConstraint refills it)
        radius = place_agents(
            self._rngs[i], self.ring_radius, self.idx, self._specs, qpos, qvel, self.origins[i]
        )
        self._unstarted.discard(i)
        self.radius[i] = radius
        self.steps[i] = 0
        self.touched[i] = self.touching[i] = False
        self.terminated[i] = self.truncated[i] = False

    def _forward_positions(self) -> None:
        """Torso pose sensors from qpos as it is now, for every game (after resets).

        Only kinematics and the position sensors: cheaper than mj_forward over all games,
        and it changes nothing the next mj_step reads (that recomputes everything from qpos
        and qvel). The contact sensor is not refreshed; freshly reset agents start apart, so
        `_read` clears it for reset rows.
        """
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_sensorPos(self.model, self.data)

    # -- stepping ---------------------------------------------------------------------------

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance every unfinished game by one control step (FRAME_SKIP physics steps).

        `actions` (N, 2, act_dim) in [-1, 1] (clipped): per actuator for the ant and the bug
        (thrust along its heading, turn); for the disc a force in the agent's own frame (+x
        towards the opponent, +y to its left), the frame of its last observation. Returns
        observations (N, 2, obs_dim) float32, rewards (N, 2) float64, terminated (N,) and
        truncated (N,) bools.
        """
        a = np.asarray(actions)
        n = self.num_envs
        if a.shape != (n, 2, self.act_dim):
            raise ValueError(
                f"actions must have shape (num_envs, 2, act_dim) = {(n, 2, self.act_dim)}, "
                f"got {a.shape}"
            )
        if a.dtype.kind not in "biuf":
            raise ValueError(f"actions must be numbers, got dtype {a.dtype}")
        if self._unstarted:
            count = len(self._unstarted)
            raise RuntimeError(f"call reset() before step(): {count} game(s) never reset")
        self._set_controls(a)
        done = self.terminated | self.truncated
        all_active = not np.count_nonzero(done)
        self._ctrl[:] = self._ctrl_buf
        if not all_active:
            self._ctrl[done] = 0.0  # finished games coast
        mujoco.mj_step(self.model, self.data, FRAME_SKIP)
        # cfrc_ext (the contact part of the observation) is only filled on request.
        mujoco.mj_rnePostConstraint(self.model, self.data)
        state = self._gather(None)
        cols = self.observer.columns(state)
        geo = self.observer.geometry(cols)
        alpha = shaping_weight(self.total_steps, self.shaping_steps)
        if all_active:
            self.steps += 1
            self.total_steps += 1
            self.touching = geo.touching
        else:
            active = ~done
            self.steps += active
            self.total_steps += active
            self.touching = np.where(active, geo.touching, self.touching)
        self.touched |= self.touching
        radial = geo.radial
        fallen = geo.height < self._fall_height if self._any_can_fall else self._never_fall
        verdict = judge_batch(radial > self.radius[:, None], fallen, self.touched)
        ended = verdict.reason != ONGOING
        truncated = self.steps >= self.max_steps
        if not all_active:
            ended &= ~done
            truncated &= ~done
        truncated &= ~ended
        finished = ended | truncated
        any_finished = bool(np.count_nonzero(finished))
        sparse = np.zeros((n, 2))
        if any_finished:
            sparse[ended] = sparse_rewards_batch(verdict.winner, verdict.loser, self.draw_reward)[
                ended
            ]
            sparse[truncated] = self.draw_reward
        up_z = geo.up_z if self._all_can_fall else np.where(self._can_fall, geo.up_z, 0.0)
        terms = shaping_terms(self.weights, self._gap, geo.gap, self._radial, radial, up_z)
        weight = alpha[:, None]
        scaled = [weight * terms["approach"], weight * terms["push"], weight * terms["upright"]]
        # Summed in the order SumoEnv always reported them: approach, push, upright, sparse.
        rewards = scaled[0] + scaled[1] + scaled[2] + sparse
        reason, winner, loser = verdict
        if any_finished:
            reason = np.where(truncated, TIME_LIMIT, reason).astype(np.int8)
        if not all_active:  # finished games keep their outcome; they earn nothing
            rewards[done] = 0.0
            for t in scaled:
                t[done] = 0.0
            alpha = np.where(done, 0.0, alpha)
            reason = np.where(done, self.reason, reason)
            winner = np.where(done, self.winner, winner)
            loser = np.where(done, self.loser, loser)
        self.reward_terms = dict(zip(TERM_NAMES, [*scaled, sparse], strict=True))
        self.shaping_weight = alpha
        self.reason, self.winner, self.loser = reason, winner, loser
        # Copies returned: resets clear the attributes in place, the caller keeps the flags.
        terminated, truncated = self.terminated | ended, self.truncated | truncated
        self.terminated, self.truncated = terminated.copy(), truncated.copy()
        radius, touching = self.radius, self.touching
        time_left = 1.0 - self.steps / self.max_steps
        restart = np.flatnonzero(finished) if self.autoreset and any_finished else None
        if restart is not None:
            # Restart the finished games first, then build the final observations of all
            # games and the first ones of the new episodes in one call (one fixed cost).
            radius, touching = radius.copy(), touching.copy()  # resets write them in place
            for i in restart:
                self._reset_game(int(i), None)
            self._forward_positions()
            cols_new, geo_new = self._read(restart, fresh=True)
            cols = np.concatenate((cols, cols_new), axis=1)
            geo_all = Geometry(*(np.concatenate(p) for p in zip(geo, geo_new, strict=True)))
            radius = np.concatenate((radius, self.radius[restart]))
            touching = np.concatenate((touching, self.touching[restart]))
            time_left = np.concatenate((time_left, 1.0 - self.steps[restart] / self.max_steps))
            both = self.observer.build(cols, geo_all, radius, touching, time_left)
            self.final_obs = both[:n]
            obs = both[:n].copy()
            obs[restart] = both[n:]
        else:
            obs = self.observer.build(cols, geo, radius, touching, time_left)
            if not all_active:  # finished games repeat their final observation
                obs[done] = self.final_obs[done]
            self.final_obs = obs
        self._radial, self._gap = radial, geo.gap
        self._cos, self._sin = geo.cos_yaw, geo.sin_yaw
        if restart is not None:
            self._remember(restart, geo_new)
        return obs, rewards, terminated, truncated

    def _set_controls(self, a: np.ndarray) -> None:
        """Fill the (N, nu) ctrl buffer from (N, 2, act_dim) actions."""
        a = np.minimum(np.maximum(a, -1.0), 1.0)  # = np.clip, at a third of its call cost
        if self._disc_seat_ids:
            a = disc_forces_to_world(a, self._cos, self._sin, self._disc_seat_ids)
        if self._bug_seat_ids:
            a = bug_thrust_to_world(a, self._cos, self._sin, self._bug_seat_ids)
        a = a.reshape(self.num_envs, -1)
        self._ctrl_buf[:] = a if self._act_take is None else a[:, self._act_take]

    # -- reading MjData ---------------------------------------------------------------------

    def _gather(self, rows: np.ndarray | None) -> np.ndarray:
        """State rows (BatchObserver) of the given games (all when None), read from MjData
        now: one array copy per MjData field for all games."""
        ob = self.observer
        pick = slice(None) if rows is None else rows
        state = np.empty((self.num_envs if rows is None else len(rows), ob.width))
        state[:, ob.sensor_cols] = self._sensordata[pick]
        state[:, ob.xy_cols] -= self._xy_origin[pick]
        if ob.qpos_cols is not None:
            state[:, ob.qpos_cols] = self.qpos[pick]
        state[:, ob.qvel_cols] = self.qvel[pick]
        state[:, ob.cfrc_cols] = self._cfrc[pick]
        state[:, -1] = 0.0
        return state

    def _observe(self, cols: np.ndarray, geo: Geometry, rows: np.ndarray | None) -> np.ndarray:
        pick = slice(None) if rows is None else rows
        time_left = 1.0 - self.steps[pick] / self.max_steps
        return self.observer.build(cols, geo, self.radius[pick], self.touching[pick], time_left)

    def _read(self, rows: np.ndarray | None, fresh: bool = False) -> tuple[np.ndarray, Geometry]:
        """State columns (BatchObserver) and geometry of the given games, from MjData now;
        `fresh`: the games were just reset (`_forward_positions`), so they do not touch."""
        state = self._gather(rows)
        if fresh:
            state[:, self.observer.touch_col] = 0.0
        cols = self.observer.columns(state)
        return cols, self.observer.geometry(cols)

    def _remember(self, rows: np.ndarray | None, geo: Geometry) -> None:
        """Keep the given games' geometry: where their next step starts."""
        pick = slice(None) if rows is None else rows
        self._radial[pick], self._gap[pick] = geo.radial, geo.gap
        self._cos[pick], self._sin[pick] = geo.cos_yaw, geo.sin_yaw

    def _refresh(self, rows: np.ndarray | None, fresh: bool = False) -> np.ndarray:
        """Re-read the given games from MjData and remember them; their observations."""
        cols, geo = self._read(rows, fresh)
        self._remember(rows, geo)
        return self._observe(cols, geo, rows)

    def observe(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Observations of the given games (all when None) from their MjData as it is now,
        without changing any episode state (e.g. after writing MjData for a test)."""
        cols, geo = self._read(rows)
        return self._observe(cols, geo, rows)

    def sync(self, i: int) -> None:
        """Call after writing game i's state and running mj_forward: re-derives the
        geometry the next step's shaping and disc forces start from."""
        self._refresh(np.array([i]))

    def set_torso_xy(self, i: int, seat: int, xy: tuple[float, float]) -> None:
        """Teleport an agent's torso in game i (tests, scripted scenarios)."""
        idx = self.idx[seat]
        # A free joint's position is in world coordinates, a slide's relative to the arena.
        origin = self.origins[i] if idx.free else (0.0, 0.0)
        self.qpos[i, idx.root_qpos[:2]] = np.add(xy, origin)
        mujoco.mj_forward(self.model, self.data)
        self.sync(i)
