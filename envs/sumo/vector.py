"""N independent sumo games stepped by one Python call: the core behind `SumoEnv`.

`SumoEnv` (the PettingZoo API, one game) is a thin wrapper over `SumoVector(num_envs=1)`, so
the rules (envs/sumo/rules.py), observations (envs/sumo/observation.py) and rewards live in
one place and a rollout worker can step many games with numpy arrays in and out, no dicts.

Why this shape. One disc game's physics step (5 substeps) takes ~11 us; a dict-based env that
builds each observation with scalar Python spent ~60 us per step on top. Here the Python per
game and control step is one loop iteration (write ctrl, mj_step, mj_rnePostConstraint);
then one numpy call per MjData field (sensordata, qvel, cfrc_ext, and qpos for ants) reads
all games into state rows, and everything else (headings, rules, rewards, observations) is
numpy over all games at once (envs/sumo/observation.py: BatchObserver), a fixed cost per
call that the N games share. Sensors added to the model (envs/sumo/model.py) put the torso
poses and the "agents touch" test into sensordata, so one read replaces several fields and
the contact scan. Measured figures: BENCHMARKS.md, "Sumo env speed".

Physics: one MjData per game, stepped in a Python loop. `mujoco.rollout` steps many states in
C, but it copies states in and out, restarts the solver without the previous step's warm
start (so the trajectories would differ from stepping one MjData), and returns states and
sensordata only, not cfrc_ext, which the observation needs; on one core it was not faster
than the loop (benchmarks/sumo_env_speed.py measures both).

Direct writes: after changing a game's MjData (as tests do), run mj_forward and call
`sync(i)`, or use `set_torso_xy`; the next step's shaping starts from, and the disc forces
turn by, the geometry derived at the last step, reset or sync.

Seeding: game i's generator is `default_rng(seed + i)` (entropy when seed is None), so game i
of `SumoVector(n, seed=s)` plays exactly like `SumoEnv(seed=s + i)`; `reset(seeds)` and
`reset_one(i, seed)` reseed as `SumoEnv.reset(seed=...)` does.

Episode ends. `step()` returns the final observation and rewards of a game on the step it
ends, with `winner`, `loser`, `reason` (codes into rules.REASONS) and `reward_terms` set for
its row. What happens next depends on `autoreset`:
- False (default; what SumoEnv uses): a finished game stays finished until `reset_one(i)` or
  `reset()`. It is not simulated, its row repeats the final observation, its reward is 0, and
  its `terminated` / `truncated` flags stay set, so callers can keep stepping the others.
- True (for rollout workers): a game that ends is reset inside the same `step()` call (its
  generator continues, as for `SumoEnv.reset()` without a seed). The returned row is the new
  episode's first observation; `final_obs` holds the finished episode's last one. Flags,
  rewards and outcome arrays of that row describe the step that ended the old episode.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from envs.sumo.model import BODY_SPECS, FRAME_SKIP, agent_prefix, build_xml
from envs.sumo.observation import (
    AgentIndex,
    BatchObserver,
    Geometry,
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
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
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

        m = self.model = mujoco.MjModel.from_xml_string(build_xml(bodies))
        self.datas = [mujoco.MjData(m) for _ in range(num_envs)]
        self.idx: tuple[AgentIndex, AgentIndex] = (
            index_agent(m, agent_prefix(0)),
            index_agent(m, agent_prefix(1)),
        )
        self.observer = BatchObserver(m, self.idx)
        self.obs_sizes = self.observer.obs_sizes
        self.obs_dim = self.observer.obs_dim
        self.act_sizes = tuple(i.actuators.stop - i.actuators.start for i in self.idx)
        self.act_dim = max(self.act_sizes)
        # Actions (N, 2 * act_dim) -> ctrl (N, nu): which action entry drives each actuator.
        take = np.zeros(m.nu, np.int64)
        for k, idx in enumerate(self.idx):
            take[idx.actuators] = k * self.act_dim + np.arange(self.act_sizes[k])
        self._act_take = None if np.array_equal(take, np.arange(2 * self.act_dim)) else take
        self._disc_seat_ids = [k for k, i in enumerate(self.idx) if not i.free]
        self._can_fall = np.array([s.fall_height is not None for s in specs])
        self._any_can_fall, self._all_can_fall = bool(self._can_fall.any()), all(self._can_fall)
        self._never_fall = np.zeros((num_envs, 2), bool)
        # A body that cannot fall gets -inf: no torso height is below it.
        self._fall_height = np.array(
            [-np.inf if s.fall_height is None else s.fall_height for s in specs]
        )
        # Numpy views onto each MjData's buffers, made once: the buffers never move, and
        # making a view costs ~0.2 us per attribute access, a large share of a disc step.
        self._sensordata = [d.sensordata for d in self.datas]
        self._qpos = [d.qpos for d in self.datas]
        self._qvel = [d.qvel for d in self.datas]
        self._cfrc = [d.cfrc_ext.reshape(-1) for d in self.datas]  # a view: MjData is C-order
        self._ctrl_buf = np.zeros((num_envs, m.nu))
        # Per game: MjData, its ctrl and the ctrl row to apply; views made once.
        self._io = [(d, d.ctrl, self._ctrl_buf[i]) for i, d in enumerate(self.datas)]

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
        self._clear_outcome(slice(None))
        return self._refresh(None)

    def reset_one(self, i: int, seed: int | None = None) -> np.ndarray:
        """Start a new episode in game i; returns its (2, obs_dim) observations."""
        self._reset_game(i, seed)
        self._clear_outcome(slice(i, i + 1))
        return self._refresh(np.array([i]))[0]

    def _clear_outcome(self, rows: slice) -> None:
        self.reason[rows], self.winner[rows], self.loser[rows] = ONGOING, -1, -1

    def _reset_game(self, i: int, seed: int | None) -> None:
        if seed is not None:
            self._rngs[i] = np.random.default_rng(seed)
        rng, m, d = self._rngs[i], self.model, self.datas[i]
        qpos, qvel = self._qpos[i], self._qvel[i]
        mujoco.mj_resetData(m, d)
        radius = place_agents(rng, self.ring_radius, self.idx, self._specs, qpos, qvel)
        mujoco.mj_forward(m, d)
        self._unstarted.discard(i)
        self.radius[i] = radius
        self.steps[i] = 0
        self.touched[i] = self.touching[i] = False
        self.terminated[i] = self.truncated[i] = False

    # -- stepping ---------------------------------------------------------------------------

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance every unfinished game by one control step (FRAME_SKIP physics steps).

        `actions` (N, 2, act_dim) in [-1, 1] (clipped): per actuator for the ant; for the
        disc a force in the agent's own frame (+x towards the opponent, +y to its left), the
        frame of its last observation. Returns observations (N, 2, obs_dim) float32, rewards
        (N, 2) float64, terminated (N,) and truncated (N,) bools.
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
        m, mj_step, rne = self.model, mujoco.mj_step, mujoco.mj_rnePostConstraint
        io = self._io if all_active else [self._io[i] for i in np.flatnonzero(~done)]
        for d, ctrl, u in io:
            ctrl[...] = u
            mj_step(m, d, FRAME_SKIP)
            # cfrc_ext (the contact part of the observation) is only filled on request:
            # ~0.5 us (disc) to ~1.7 us (ant) per call, cheaper than rebuilding it from the
            # contact list in Python.
            rne(m, d)
        # Read all games after the loop, one numpy call per MjData field: measured ~0.7 us
        # per game cheaper (disc, N=256) than copying each game's fields right after its
        # step, where every copy is a separate Python-level call.
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
            cols_new, geo_new = self._read(restart)
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
        a = a.reshape(self.num_envs, -1)
        self._ctrl_buf[:] = a if self._act_take is None else a[:, self._act_take]

    # -- reading MjData ---------------------------------------------------------------------

    def _gather(self, rows: np.ndarray | None) -> np.ndarray:
        """State rows (BatchObserver) of the given games (all when None), read from MjData
        now: one array assignment per MjData field for all games."""
        ob = self.observer

        def pick(views: list[np.ndarray]) -> list[np.ndarray]:
            return views if rows is None else [views[i] for i in rows]

        state = np.empty((self.num_envs if rows is None else len(rows), ob.width))
        state[:, ob.sensor_cols] = pick(self._sensordata)
        if ob.qpos_cols is not None:
            state[:, ob.qpos_cols] = pick(self._qpos)
        state[:, ob.qvel_cols] = pick(self._qvel)
        state[:, ob.cfrc_cols] = pick(self._cfrc)
        state[:, -1] = 0.0
        return state

    def _observe(self, cols: np.ndarray, geo: Geometry, rows: np.ndarray | None) -> np.ndarray:
        pick = slice(None) if rows is None else rows
        time_left = 1.0 - self.steps[pick] / self.max_steps
        return self.observer.build(cols, geo, self.radius[pick], self.touching[pick], time_left)

    def _read(self, rows: np.ndarray | None) -> tuple[np.ndarray, Geometry]:
        """State columns (BatchObserver) and geometry of the given games, from MjData now."""
        cols = self.observer.columns(self._gather(rows))
        return cols, self.observer.geometry(cols)

    def _remember(self, rows: np.ndarray | None, geo: Geometry) -> None:
        """Keep the given games' geometry: where their next step starts."""
        pick = slice(None) if rows is None else rows
        self._radial[pick], self._gap[pick] = geo.radial, geo.gap
        self._cos[pick], self._sin[pick] = geo.cos_yaw, geo.sin_yaw

    def _refresh(self, rows: np.ndarray | None) -> np.ndarray:
        """Re-read the given games from MjData and remember them; their observations."""
        cols, geo = self._read(rows)
        self._remember(rows, geo)
        return self._observe(cols, geo, rows)

    def observe(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Observations of the given games (all when None) from their MjData as it is now,
        without changing any episode state (e.g. after writing MjData for a test)."""
        cols, geo = self._read(rows)
        return self._observe(cols, geo, rows)

    def sync(self, i: int) -> None:
        """Call after writing game i's MjData and running mj_forward: re-derives the
        geometry the next step's shaping and disc forces start from."""
        self._refresh(np.array([i]))

    def set_torso_xy(self, i: int, seat: int, xy: tuple[float, float]) -> None:
        """Teleport an agent's torso in game i (tests, scripted scenarios)."""
        idx = self.idx[seat]
        self.datas[i].qpos[idx.root_qpos[:2]] = xy
        mujoco.mj_forward(self.model, self.datas[i])
        self.sync(i)
