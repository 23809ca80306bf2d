"""N independent sumo games stepped by one Python call: the core behind `SumoEnv`.

`SumoEnv` (the PettingZoo API, one game) is a thin wrapper over `SumoVector(num_envs=1)`, so
the rules (envs/sumo/rules.py), observations (envs/sumo/observation.py) and rewards live in
one place and a rollout worker can step many games with numpy arrays in and out, no dicts.

Why this shape. All N games live in one MjModel (envs/sumo/model.py: one arena per game
on a grid), so one `mj_step` advances them all and there is no Python per game: for the
cheap bodies MuJoCo's fixed cost per call outweighs one game's physics, and stepping N
one-game MjData from a Python loop was ~5x slower per game (disc, N=256). After the step,
each MjData field the observation needs (sensordata, qvel, cfrc_ext, and qpos for ants) is
one (N, per game) view; everything else (headings, observations, rules, rewards, and the
actions' conversion to motor inputs) runs in compiled (numba) loops over the games:
`BatchObserver` (envs/sumo/observation.py), `actions_to_inputs` (actuation.py) and
`score_games` (rules.py, with the one-game rules). As numpy calls over all games, that work
cost about as much as the cheap bodies' physics. Sensors in the model put the torso poses
and the "agents touch" test into sensordata, so one read replaces several fields and the
contact scan. Measured figures: BENCHMARKS.md, "Sumo env speed".

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

from collections.abc import Callable, Mapping, Sequence

import mujoco
import numpy as np

from envs.randomization.targets import PhysicsTargets, named_ids
from envs.sumo.actuation import actions_to_inputs, input_layout
from envs.sumo.history import FrameHistory
from envs.sumo.indexing import AgentIndex, check_game_blocks, index_agent
from envs.sumo.model import (
    BODY_SPECS,
    FRAME_SKIP,
    agent_prefix,
    arena_origins,
    arena_spacing,
    build_xml,
    game_prefix,
)
from envs.sumo.observation import BatchObserver, Geometry
from envs.sumo.rules import ONGOING, REASONS, ShapingWeights, score_games
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
    entries of the smaller body are ignored. `history` earlier frames, `history_stride`
    control steps apart, follow each observation (envs/sumo/history.py; 0: none).
    """

    def __init__(
        self,
        num_envs: int,
        bodies: tuple[str, str] = ("disc", "disc"),
        ring_radius: tuple[float, float] | None = None,
        max_steps: int | None = None,
        shaping_steps: int = 1_000_000,
        draw_reward: float = 0.0,
        shaping: ShapingWeights | Mapping[str, float] | None = None,
        seed: int | None = None,
        autoreset: bool = False,
        history: int = 0,
        history_stride: int = 1,
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
        self.weights = ShapingWeights.from_config(shaping)
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
        check_game_blocks(m, num_envs, self.idx)
        self.observer = BatchObserver(
            m, self.idx, num_envs, (specs[0].contact_scale, specs[1].contact_scale)
        )
        # Observations are the current frame plus `history` earlier ones (history.py); with
        # history each seat's observation is the full stacked width, padding included.
        self.history = FrameHistory(num_envs, self.observer.obs_dim, history, history_stride)
        self.obs_dim = self.history.obs_dim
        self.obs_sizes = self.observer.obs_sizes if not history else (self.obs_dim,) * 2
        self.act_sizes = tuple(i.num_actions for i in self.idx)
        self.act_dim = max(self.act_sizes)
        # How each seat's actions drive its actuators (actuation.py).
        self._act_kinds, self._input_width, self._act_take = input_layout(
            bodies, self.idx, m.nu // num_envs
        )
        self._can_fall = np.array([s.fall_height is not None for s in specs])
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
        self._ctrl_buf = np.zeros((n, m.nu // n))
        # Torso xy sensors are world positions; rows minus this are relative to the ring.
        self._xy_origin = np.tile(self.origins, 2)
        self._mj_rows = (self._sensordata, self.qpos, self.qvel, self._cfrc)  # what observe reads
        self._all_rows = np.arange(n)

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
        self._xy = np.zeros((n, 2, 2))
        # cos and sin of the headings the agents last observed: their frames (disc forces).
        self._cos, self._sin = np.ones((n, 2)), np.zeros((n, 2))
        self._unstarted = set(range(n))  # games never reset: nothing to step yet
        self._reset_hooks: list[Callable[[int], None]] = []

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
        frame = self._refresh(None, fresh=True)
        self.history.restart(frame)
        return self.history.stack(frame)

    def reset_one(self, i: int, seed: int | None = None) -> np.ndarray:
        """Start a new episode in game i; returns its (2, obs_dim) observations."""
        self._reset_game(i, seed)
        self._forward_positions()
        self._clear_outcome(slice(i, i + 1))
        rows = np.array([i])
        frame = self._refresh(rows, fresh=True)
        self.history.restart(frame, rows)
        return self.history.stack(frame, rows)[0]

    def add_reset_hook(self, hook: Callable[[int], None]) -> None:
        """Calls `hook(i)` each time game i starts an episode (reset, reset_one, autoreset),
        after its bodies are placed and before its first observation is taken: where a
        wrapper may change game i's physics in the shared model for the new episode."""
        self._reset_hooks.append(hook)

    def physics_targets(self, i: int) -> PhysicsTargets:
        """Game i's randomisable physics (envs/randomization): both agents' bodies, joints,
        motors and geoms, and the contact pair between them. All games share one model, so
        gravity and the timestep stay as they are."""
        m, bodies = self.model, []
        for k in range(2):
            prefix = game_prefix(i) + agent_prefix(k)
            bodies.extend(named_ids(m, mujoco.mjtObj.mjOBJ_BODY, m.nbody, prefix))
        acts = [
            named_ids(m, mujoco.mjtObj.mjOBJ_ACTUATOR, m.nu, game_prefix(i) + agent_prefix(k))
            for k in range(2)
        ]
        geoms = np.flatnonzero(np.isin(m.geom_bodyid, bodies))
        return PhysicsTargets(
            m,
            bodies=np.array(bodies, dtype=int),
            dofs=np.flatnonzero(np.isin(m.dof_bodyid, bodies)),
            actuators=np.concatenate(acts),
            geoms=geoms,
            pairs=np.flatnonzero(np.isin(m.pair_geom1, geoms)),
        )

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
        for hook in self._reset_hooks:
            hook(i)
        self.steps[i] = 0
        self.touched[i] = self.touching[i] = False
        self.terminated[i] = self.truncated[i] = False

    def _forward_positions(self) -> None:
        """Torso pose sensors from qpos as it is now, for every game (after resets).

        Only kinematics and the position sensors: cheaper than mj_forward over all games,
        and it changes nothing the next mj_step reads (that recomputes everything from qpos
        and qvel). The contact sensor is not refreshed; freshly reset agents start apart, so
        `_observe(fresh=True)` ignores it for reset rows.
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
        if all_active:
            self.steps += 1
            self.total_steps += 1
        else:
            active = ~done
            self.steps += active
            self.total_steps += active
        # Observations of every game now (a finished game's row is replaced below; a game
        # that restarts keeps this row as its final observation).
        time_left = 1.0 - self.steps / self.max_steps
        rows, origin = self._all_rows, self._xy_origin
        frame, geo = self.observer.observe(self._mj_rows, origin, rows, self.radius, time_left)
        rewards, terms = np.empty((n, 2)), np.empty((len(TERM_NAMES), n, 2))
        alpha, ended, truncated = np.empty(n), np.empty(n, np.bool_), np.empty(n, np.bool_)
        reason, winner, loser = self.reason.copy(), self.winner.copy(), self.loser.copy()
        finished = score_games(
            done, geo.radial, geo.xy, geo.height, geo.up_z, geo.touching, self.radius,
            self.steps, self.total_steps, self.max_steps, self._fall_height, self._can_fall,
            float(self.draw_reward), self.weights.as_tuple(), self.shaping_steps, self._radial,
            self._xy, self.touching, self.touched, reason, winner, loser, rewards, terms,
            alpha, ended, truncated,
        )  # fmt: skip
        obs = self.history.stack(frame)  # `frame` itself without history
        if all_active:
            self.history.push(frame)
        else:
            obs[done] = self.final_obs[done]  # finished games repeat their final observation
            active = np.flatnonzero(~done)
            self.history.push(frame[active], active)
        self.reward_terms = dict(zip(TERM_NAMES, terms, strict=True))
        self.shaping_weight = alpha
        self.reason, self.winner, self.loser = reason, winner, loser
        restart = np.flatnonzero(ended | truncated) if self.autoreset and finished else None
        # Copies returned: resets clear the attributes in place, the caller keeps the flags.
        terminated, truncated = self.terminated | ended, self.truncated | truncated
        self.terminated, self.truncated = terminated.copy(), truncated.copy()
        self.final_obs = obs
        if restart is not None:
            obs = obs.copy()
            for i in restart:
                self._reset_game(int(i), None)
            self._forward_positions()
            fresh, geo_new = self._observe(restart, fresh=True)
            self.history.restart(fresh, restart)
            obs[restart] = self.history.stack(fresh, restart)
        self._radial, self._xy = geo.radial, geo.xy
        self._cos, self._sin = geo.cos_yaw, geo.sin_yaw
        if restart is not None:
            self._remember(restart, geo_new)
        return obs, rewards, terminated, truncated

    def _set_controls(self, a: np.ndarray) -> None:
        """Fill the (N, nu) ctrl buffer from (N, 2, act_dim) actions."""
        kinds, width, take = self._act_kinds, self._input_width, self._act_take
        actions_to_inputs(a, self._cos, self._sin, kinds, width, take, self._ctrl_buf)

    # -- reading MjData ---------------------------------------------------------------------

    def _observe(self, rows: np.ndarray | None, fresh: bool = False) -> tuple[np.ndarray, Geometry]:
        """Observations and geometry of the given games (all when None) from MjData now,
        reporting their stored `touching` flags; `fresh`: the games were just reset
        (`_forward_positions`), so they do not touch."""
        pick = slice(None) if rows is None else rows
        return self.observer.observe(
            self._mj_rows,
            self._xy_origin,
            self._all_rows if rows is None else rows,
            self.radius[pick],
            1.0 - self.steps[pick] / self.max_steps,
            touching=self.touching[pick],
            fresh=fresh,
        )

    def _remember(self, rows: np.ndarray | None, geo: Geometry) -> None:
        """Keep the given games' geometry: where their next step starts."""
        pick = slice(None) if rows is None else rows
        self._radial[pick], self._xy[pick] = geo.radial, geo.xy
        self._cos[pick], self._sin[pick] = geo.cos_yaw, geo.sin_yaw

    def _refresh(self, rows: np.ndarray | None, fresh: bool = False) -> np.ndarray:
        """Re-read the given games from MjData and remember them; their observations."""
        obs, geo = self._observe(rows, fresh)
        self._remember(rows, geo)
        return obs

    def observe(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Observations of the given games (all when None) from their MjData as it is now,
        without changing any episode state (e.g. after writing MjData for a test)."""
        return self.history.stack(self._observe(rows)[0], slice(None) if rows is None else rows)

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
