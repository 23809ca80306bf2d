"""Two-agent MuJoCo sumo as a PettingZoo ParallelEnv (after Bansal et al. 2017).

Agents "agent_0" and "agent_1" start on opposite sides of a round ring, facing each other.
An agent loses when its torso's xy distance from the centre exceeds the episode's ring
radius, or (ant) when its torso drops below the fall height. A win needs contact: if the
agents never touched, a loss is scored as a draw. Reaching `max_steps` is a draw
(truncation). On the final step `info[agent]` holds "winner" (agent name or None) and
"reason"; every step it holds "reward_terms" (the weighted terms summing to the reward, plus
the current "shaping_weight").

Observation: Box(float32) of size 34 (disc) or 98 (ant); layout in `envs.sumo.observation`.
Action: Box([-1, 1]) per actuator: disc 2 (planar force along the agent's own frame: +x
towards the opponent, +y to its left), ant 8 (hip, ankle per leg).
Reward: +1 win / -1 loss (also for leaving the ring or falling without contact, which is
a draw for the match) / `draw_reward` otherwise, plus dense shaping (approach, push,
upright) scaled by a weight annealed linearly from 1 to 0 over `shaping_steps` env steps
counted across episodes by this env instance (a job with E envs anneals over E times that).
Contact is sampled once per control step (after the physics substeps), not per substep.
"""

from __future__ import annotations

import math
from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils import parallel_to_aec

from envs.sumo.model import BODY_SPECS, FRAME_SKIP, RING_GEOM, agent_prefix, build_xml
from envs.sumo.observation import AgentIndex, build_obs, heading, index_agent
from envs.sumo.rules import (
    ShapingWeights,
    judge,
    shaping_terms,
    shaping_weight,
    sparse_rewards,
)

AGENTS = ("agent_0", "agent_1")
START_FRACTION = 0.4  # start this fraction of the radius from the centre
POS_JITTER = 0.1  # m
YAW_JITTER = 0.15  # rad
JOINT_JITTER = 0.05  # rad (ant hinges), and m/s or rad/s for velocities


class SumoEnv(ParallelEnv):
    metadata = {
        "render_modes": ["rgb_array"],
        "name": "sumo_v0",
        "is_parallelizable": True,
        "render_fps": round(1.0 / (0.003 * FRAME_SKIP)),
    }

    def __init__(
        self,
        bodies: tuple[str, str] = ("disc", "disc"),
        ring_radius: tuple[float, float] | None = None,
        max_steps: int | None = None,
        shaping_steps: int = 1_000_000,
        draw_reward: float = 0.0,
        shaping: ShapingWeights | None = None,
        render_mode: str | None = None,
        seed: int | None = None,
        render_size: int = 480,
    ) -> None:
        bodies = tuple(bodies)  # type: ignore[assignment]
        if len(bodies) != 2:
            raise ValueError("bodies must name two body types")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        specs = [BODY_SPECS[b] for b in bodies]
        # Defaults follow the larger body so the ring fits it (ant ranges for any ant match).
        big = max(specs, key=lambda s: s.default_radius[1])
        self.ring_radius = tuple(ring_radius) if ring_radius is not None else big.default_radius
        self.max_steps = max_steps or max(s.default_max_steps for s in specs)
        self.shaping_steps = shaping_steps
        self.draw_reward = draw_reward
        self.weights = shaping or ShapingWeights()
        self.render_mode = render_mode
        self.render_size = render_size
        self.bodies = bodies
        self._specs = specs

        self.model = mujoco.MjModel.from_xml_string(build_xml(bodies))
        self.data = mujoco.MjData(self.model)
        self._ring_geom = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, RING_GEOM)
        self._idx: list[AgentIndex] = [index_agent(self.model, agent_prefix(i)) for i in range(2)]
        # Geom -> agent (-1 for the world) turns "do the agents touch" into array lookups.
        self._geom_agent = np.full(self.model.ngeom, -1, dtype=np.int64)
        for i, idx in enumerate(self._idx):
            self._geom_agent[np.isin(self.model.geom_bodyid, idx.bodies)] = i

        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self._obs_spaces = {
            a: spaces.Box(-np.inf, np.inf, (self._idx[i].obs_size,), np.float32)
            for i, a in enumerate(AGENTS)
        }
        self._act_spaces = {
            a: spaces.Box(-1.0, 1.0, (idx.actuators.stop - idx.actuators.start,), np.float32)
            for a, idx in zip(AGENTS, self._idx, strict=True)
        }
        self._rng = np.random.default_rng(seed)
        self._renderer: mujoco.Renderer | None = None
        self.total_steps = 0  # across episodes; drives the shaping anneal
        self._steps = 0
        self._radius = float(self.ring_radius[0])
        self._touched = False
        self._touching = False

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self._act_spaces[agent]

    # -- episode ---------------------------------------------------------------------------

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        rng, m, d = self._rng, self.model, self.data
        mujoco.mj_resetData(m, d)
        lo, hi = self.ring_radius
        self._radius = float(rng.uniform(lo, hi))
        m.geom_size[self._ring_geom, 0] = self._radius  # visual only; the ring never collides
        start = START_FRACTION * self._radius
        for i, idx in enumerate(self._idx):
            side = -1.0 if i == 0 else 1.0
            x = side * start + rng.uniform(-POS_JITTER, POS_JITTER)
            y = rng.uniform(-POS_JITTER, POS_JITTER)
            d.qpos[idx.root_qpos[:2]] = (x, y)
            if idx.free:
                # agent_0 on -x faces +x (yaw 0); agent_1 on +x faces -x (yaw pi)
                yaw = (0.0 if i == 0 else math.pi) + rng.uniform(-YAW_JITTER, YAW_JITTER)
                d.qpos[idx.root_qpos[2]] = self._specs[i].start_height
                d.qpos[idx.root_qpos[3:7]] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
            n = len(idx.hinge_qpos)
            d.qpos[idx.hinge_qpos] = idx.hinge_nominal + rng.uniform(-JOINT_JITTER, JOINT_JITTER, n)
            d.qvel[idx.hinge_qvel] = rng.uniform(-JOINT_JITTER, JOINT_JITTER, n)
        mujoco.mj_forward(m, d)
        self.agents = list(AGENTS)
        self._steps = 0
        self._touched = self._touching = False
        self._update_geometry()
        obs = self._observations()
        infos: dict[str, dict[str, Any]] = {a: {"ring_radius": self._radius} for a in AGENTS}
        return obs, infos

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
        m, d = self.model, self.data
        for i, (agent, idx) in enumerate(zip(AGENTS, self._idx, strict=True)):
            act = actions.get(agent)
            if act is None:
                d.ctrl[idx.actuators] = 0.0
                continue
            act = np.clip(act, -1.0, 1.0)
            if not idx.free:  # disc forces are given in the agent's frame (observation.py)
                yaw = heading(d, idx, self._idx[1 - i])
                c, s = math.cos(yaw), math.sin(yaw)
                act = np.array((c * act[0] - s * act[1], s * act[0] + c * act[1]))
            d.ctrl[idx.actuators] = act
        mujoco.mj_step(m, d, nstep=FRAME_SKIP)
        # cfrc_ext (the contact part of the observation) is only filled on request.
        mujoco.mj_rnePostConstraint(m, d)
        self._steps += 1
        alpha = shaping_weight(self.total_steps, self.shaping_steps)
        self.total_steps += 1

        gap_before, radial_before = self._gap, self._radial.copy()
        self._update_geometry()
        self._touching = self._agents_touch()
        self._touched |= self._touching
        out = (bool(self._radial[0] > self._radius), bool(self._radial[1] > self._radius))
        fallen = tuple(
            s.fall_height is not None and bool(self._z[i] < s.fall_height)
            for i, s in enumerate(self._specs)
        )
        outcome = judge(out, fallen, self._touched)  # type: ignore[arg-type]
        truncated = outcome is None and self._steps >= self.max_steps
        sparse = (0.0, 0.0)
        if outcome is not None:
            sparse = sparse_rewards(outcome, self.draw_reward)
        elif truncated:
            sparse = (self.draw_reward, self.draw_reward)

        rewards, infos = {}, {}
        for i, agent in enumerate(AGENTS):
            up_z = (
                None
                if self._specs[i].fall_height is None
                else float(d.xmat[self._idx[i].torso_body, 8])
            )
            terms = shaping_terms(
                self.weights, gap_before, self._gap, radial_before[1 - i], self._radial[1 - i], up_z
            )
            reward_terms = {k: alpha * v for k, v in terms.items()}
            reward_terms["sparse"] = sparse[i]
            rewards[agent] = float(sum(reward_terms.values()))
            reward_terms["shaping_weight"] = alpha
            infos[agent] = {"reward_terms": reward_terms}
        if outcome is not None or truncated:
            winner = None if outcome is None or outcome.winner is None else AGENTS[outcome.winner]
            reason = "time_limit" if outcome is None else outcome.reason
            for agent in AGENTS:
                infos[agent].update(winner=winner, reason=reason)
        obs = self._observations()
        terminations = {a: outcome is not None for a in AGENTS}
        truncations = {a: truncated for a in AGENTS}
        if outcome is not None or truncated:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    # -- helpers ---------------------------------------------------------------------------

    def _update_geometry(self) -> None:
        xpos = self.data.xpos[[self._idx[0].torso_body, self._idx[1].torso_body]]
        self._z = xpos[:, 2].copy()
        self._radial = np.hypot(xpos[:, 0], xpos[:, 1])
        self._gap = float(np.hypot(*(xpos[0, :2] - xpos[1, :2])))

    def _agents_touch(self) -> bool:
        ncon = self.data.ncon
        if ncon == 0:
            return False
        owners = self._geom_agent[self.data.contact.geom[:ncon]]
        return bool(
            np.any((owners[:, 0] >= 0) & (owners[:, 1] >= 0) & (owners[:, 0] != owners[:, 1]))
        )

    def _observations(self) -> dict[str, np.ndarray]:
        time_left = 1.0 - self._steps / self.max_steps
        return {
            agent: build_obs(
                self.data, self._idx[i], self._idx[1 - i], self._radius, self._touching, time_left
            )
            for i, agent in enumerate(AGENTS)
        }

    def set_torso_xy(self, agent: str, xy: tuple[float, float]) -> None:
        """Teleport an agent's torso (tests, scripted scenarios); recomputes derived state."""
        idx = self._idx[AGENTS.index(agent)]
        self.data.qpos[idx.root_qpos[:2]] = xy
        mujoco.mj_forward(self.model, self.data)
        self._update_geometry()

    @property
    def radius(self) -> float:
        """This episode's ring radius."""
        return self._radius

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


def parallel_env(**kwargs: Any) -> SumoEnv:
    return SumoEnv(**kwargs)


def env(**kwargs: Any) -> Any:
    """AEC version (agents act in turn; physics advances once both have acted)."""
    return parallel_to_aec(SumoEnv(**kwargs))
