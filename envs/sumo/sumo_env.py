"""Two-agent MuJoCo sumo as a PettingZoo ParallelEnv (after Bansal et al. 2017).

Agents "agent_0" and "agent_1" start on opposite sides of a round ring, facing each other.
An agent loses when its torso's xy distance from the centre exceeds the episode's ring
radius, or (ant) when its torso drops below the fall height. A win needs contact: if the
agents never touched, a loss is scored as a draw. Reaching `max_steps` is a draw
(truncation). On the final step `info[agent]` holds "winner" (agent name or None) and
"reason"; every step it holds "reward_terms" (the weighted terms summing to the reward, plus
the current "shaping_weight").

Observation: Box(float32) of size 34 (disc, bug) or 98 (ant); layout in
`envs.sumo.observation`. With `history=k` it is followed by k earlier observations,
`history_stride` control steps apart (`envs.sumo.history`): size 34 * (1 + k) for bugs.
Action: Box([-1, 1]) per actuator: disc 2 (planar force along the agent's own frame: +x
towards the opponent, +y to its left), bug 2 (thrust along its heading, turning torque),
ant 8 (hip, ankle per leg).
Reward: +1 win / -1 loss (also for leaving the ring or falling without contact, which is
a draw for the match) / `draw_reward` otherwise, plus dense shaping (approach, push,
upright) scaled by a weight annealed linearly from 1 to 0 over `shaping_steps` env steps
counted across episodes by this env instance (a job with E envs anneals over E times that).
`shaping` sets the terms' weights (rules.ShapingWeights; a mapping such as
`{approach: 2.0}` from a config).
Contact is sampled once per control step (after the physics substeps), not per substep.

The game itself (physics, rules, observations, rewards) is `envs.sumo.vector.SumoVector`
with one game; this class only translates to and from PettingZoo's per-agent dicts. To step
many games per call with arrays, use SumoVector directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils import parallel_to_aec

from core.dynamics import DynamicsRanges
from envs.randomization import randomized
from envs.sumo.indexing import AgentIndex
from envs.sumo.model import FRAME_SKIP, RING_GEOM, TIMESTEP
from envs.sumo.rules import ShapingWeights
from envs.sumo.vector import SumoVector

AGENTS = ("agent_0", "agent_1")


class _FromVector:
    """An attribute that lives on the wrapped SumoVector (so setting it changes the game)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: SumoEnv | None, objtype: type | None = None) -> Any:
        return self if obj is None else getattr(obj._vec, self.name)

    def __set__(self, obj: SumoEnv, value: Any) -> None:
        setattr(obj._vec, self.name, value)


class SumoEnv(ParallelEnv):
    """One sumo game with the PettingZoo parallel API: a thin wrapper over
    `SumoVector(num_envs=1)`, which holds the rules, physics and observations."""

    metadata = {
        "render_modes": ["rgb_array"],
        "name": "sumo_v0",
        "is_parallelizable": True,
        "render_fps": round(1.0 / (TIMESTEP * FRAME_SKIP)),
    }

    bodies = _FromVector()
    ring_radius = _FromVector()
    max_steps = _FromVector()
    shaping_steps = _FromVector()
    draw_reward = _FromVector()
    weights = _FromVector()
    model = _FromVector()

    def __init__(
        self,
        bodies: tuple[str, str] = ("disc", "disc"),
        ring_radius: tuple[float, float] | None = None,
        max_steps: int | None = None,
        shaping_steps: int = 1_000_000,
        draw_reward: float = 0.0,
        shaping: ShapingWeights | Mapping[str, float] | None = None,
        render_mode: str | None = None,
        seed: int | None = None,
        render_size: int = 480,
        history: int = 0,
        history_stride: int = 1,
    ) -> None:
        if len(tuple(bodies)) != 2:
            raise ValueError("bodies must name two body types")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        self._vec = SumoVector(
            1,
            bodies=bodies,
            ring_radius=ring_radius,
            max_steps=max_steps,
            shaping_steps=shaping_steps,
            draw_reward=draw_reward,
            shaping=shaping,
            seed=seed,
            history=history,
            history_stride=history_stride,
        )
        self.render_mode = render_mode
        self.render_size = render_size
        self._ring_geom = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, RING_GEOM)
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        vec = self._vec
        self._obs_spaces = {
            a: spaces.Box(-np.inf, np.inf, (vec.obs_sizes[i],), np.float32)
            for i, a in enumerate(AGENTS)
        }
        self._act_spaces = {
            a: spaces.Box(-1.0, 1.0, (vec.act_sizes[i],), np.float32) for i, a in enumerate(AGENTS)
        }
        self._renderer: mujoco.Renderer | None = None

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self._act_spaces[agent]

    # -- state the tests and scripted scenarios reach into ----------------------------------

    @property
    def data(self) -> mujoco.MjData:
        """The game's MjData. After writing to it, run mj_forward and `self._vec.sync(0)`
        (or use `set_torso_xy`) so the next step starts from the new state."""
        return self._vec.data

    @property
    def _idx(self) -> tuple[AgentIndex, AgentIndex]:
        return self._vec.idx

    @property
    def total_steps(self) -> int:
        """Env steps across episodes; drives the shaping anneal."""
        return int(self._vec.total_steps[0])

    @total_steps.setter
    def total_steps(self, value: int) -> None:
        self._vec.total_steps[0] = value

    @property
    def radius(self) -> float:
        """This episode's ring radius."""
        return float(self._vec.radius[0])

    # -- episode ---------------------------------------------------------------------------

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        obs = self._vec.reset_one(0, seed)
        self.model.geom_size[self._ring_geom, 0] = self.radius  # visual only; never collides
        self.agents = list(AGENTS)
        infos: dict[str, dict[str, Any]] = {a: {"ring_radius": self.radius} for a in AGENTS}
        return self._split(obs), infos

    def step(
        self, actions: dict[str, np.ndarray]
    ) -> tuple[
        dict[str, np.ndarray],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        if not self.agents:
            raise RuntimeError("step() called after the episode ended; call reset()")
        vec = self._vec
        given = [actions.get(a) for a in AGENTS]
        arrays = [np.asarray(x) for x in given if x is not None]
        # Keep the actions' precision: float32 actions rotate (disc) in float32, as always.
        batch = np.zeros((1, 2, vec.act_dim), np.result_type(*arrays) if arrays else np.float64)
        for k, act in enumerate(given):
            if act is not None:  # a missing action means no force
                batch[0, k, : vec.act_sizes[k]] = act
        obs, rew, term, trunc = vec.step(batch)
        alpha = float(vec.shaping_weight[0])
        infos: dict[str, dict[str, Any]] = {}
        for k, agent in enumerate(AGENTS):
            terms = {name: float(v[0, k]) for name, v in vec.reward_terms.items()}
            terms["shaping_weight"] = alpha
            infos[agent] = {"reward_terms": terms}
        ended, truncated = bool(term[0]), bool(trunc[0])
        if ended or truncated:
            winner = None if vec.winner[0] < 0 else AGENTS[vec.winner[0]]
            for agent in AGENTS:
                infos[agent].update(winner=winner, reason=vec.reason_name(0))
            self.agents = []
        rewards = {a: float(rew[0, k]) for k, a in enumerate(AGENTS)}
        terminations = {a: ended for a in AGENTS}
        truncations = {a: truncated for a in AGENTS}
        return self._split(obs[0]), rewards, terminations, truncations, infos

    def randomize(self, ranges: DynamicsRanges, seed: int | None = None) -> None:
        """From the next reset on, every episode draws its physics from `ranges`
        (envs/randomization); evaluation on held-out dynamics plays this way."""
        self._vec = randomized(self._vec, ranges, seed)

    # -- helpers ---------------------------------------------------------------------------

    def _split(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """(2, obs_dim) -> per agent, without the padding of a smaller body."""
        return {a: obs[k, : self._vec.obs_sizes[k]] for k, a in enumerate(AGENTS)}

    def _observations(self) -> dict[str, np.ndarray]:
        """Observations of the current MjData state (after writing to `data` directly)."""
        return self._split(self._vec.observe()[0])

    def set_torso_xy(self, agent: str, xy: tuple[float, float]) -> None:
        """Teleport an agent's torso (tests, scripted scenarios); recomputes derived state."""
        self._vec.set_torso_xy(0, AGENTS.index(agent), xy)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.render_size, self.render_size)
            self._camera = mujoco.MjvCamera()
            self._camera.lookat[:] = (0.0, 0.0, 0.0)
            self._camera.distance = 2.6 * self.ring_radius[1]
            self._camera.elevation = -50.0
            self._camera.azimuth = 90.0
        self._renderer.update_scene(self.data, camera=self._camera)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    # PettingZoo's factories call the time limit `max_cycles` (its max_cycles_test does).
    if "max_cycles" in kwargs:
        if "max_steps" in kwargs:
            raise TypeError("give max_steps or max_cycles, not both")
        kwargs["max_steps"] = kwargs.pop("max_cycles")
    return kwargs


def parallel_env(**kwargs: Any) -> SumoEnv:
    """`max_cycles` is accepted as PettingZoo's name for `max_steps`."""
    return SumoEnv(**_kwargs(kwargs))


def vector_env(num_envs: int, seed: int | None = None, **kwargs: Any) -> SumoVector:
    """The batched twin of `parallel_env` for rollout workers (actors/vector_rollout.py):
    `num_envs` games in one model, stepped by one call, each restarting as it ends. Game i
    plays like `parallel_env(seed=seed + i, **kwargs)`."""
    kwargs = _kwargs(dict(kwargs))
    if "render_mode" in kwargs or "render_size" in kwargs:
        raise TypeError("vector_env does not render (use parallel_env)")
    return SumoVector(num_envs, seed=seed, autoreset=True, **kwargs)


def env(**kwargs: Any) -> Any:
    """AEC version (agents act in turn; physics advances once both have acted)."""
    return parallel_to_aec(SumoEnv(**_kwargs(kwargs)))
