"""The gymnasium-robotics Fetch tasks (Plappert et al. 2018) as goal tasks: a 7-DoF arm
moved by a mocap target, 4 continuous actions (the gripper's xyz displacement and its
opening), episodes of 50 steps that end only by the time limit, success when the object
(the gripper, for reach) is within 5 cm of the goal.

`task`: "reach", "push", "pick_and_place" or "slide" (the -v4 environments; -v4 fixed the
resets and objects starting below the table). Their MuJoCo models need `mujoco==3.3.*`.
The games of a vector are gymnasium environments stepped one after the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mujoco
import numpy as np

from envs.goal import GoalObs
from envs.randomization.targets import PhysicsTargets, named_ids

TASKS = {
    "reach": "FetchReach-v4",
    "push": "FetchPush-v4",
    "pick_and_place": "FetchPickAndPlace-v4",
    "slide": "FetchSlide-v4",
}
DISTANCE_THRESHOLD = 0.05  # metres, every Fetch task's


def compute_reward(achieved: np.ndarray, desired: np.ndarray, info: Any = None) -> np.ndarray:
    """The tasks' sparse reward: 0 within 5 cm of the goal, else -1; batched, pure (the
    same as the environments' own `compute_reward`)."""
    distance = np.linalg.norm(np.asarray(achieved) - np.asarray(desired), axis=-1)
    return -(distance > DISTANCE_THRESHOLD).astype(np.float32)


class FetchVector:
    continuous = True

    def __init__(self, num_envs: int, task: str = "push", seed: int | None = None) -> None:
        if task not in TASKS:
            raise ValueError(f"unknown Fetch task {task!r} (known: {', '.join(TASKS)})")
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        import gymnasium
        import gymnasium_robotics

        gymnasium.register_envs(gymnasium_robotics)
        self.task, self.num_envs = task, num_envs
        self._envs = [gymnasium.make(TASKS[task]) for _ in range(num_envs)]
        base = np.random.SeedSequence(seed).generate_state(num_envs)
        self._seeds: list[int | None] = [int(s) for s in base]
        spaces = self._envs[0].observation_space
        self.obs_dim = int(spaces["observation"].shape[0])
        self.goal_dim = int(spaces["desired_goal"].shape[0])
        self.num_actions = int(self._envs[0].action_space.shape[0])
        self.max_steps = int(self._envs[0].spec.max_episode_steps)
        self.final_obs = GoalObs(
            np.zeros((num_envs, self.obs_dim), np.float32),
            np.zeros((num_envs, self.goal_dim), np.float32),
            np.zeros((num_envs, self.goal_dim), np.float32),
        )
        self._reset_hooks: list[Callable[[int], None]] = []

    def add_reset_hook(self, hook: Callable[[int], None]) -> None:
        """Calls `hook(i)` before game i starts an episode (reset and autoreset): where a
        wrapper changes game i's physics for the new episode."""
        self._reset_hooks.append(hook)

    def physics_targets(self, i: int) -> PhysicsTargets:
        """Game i's randomisable physics (envs/randomization): the arm's links, joints and
        geoms, the mocap weld that stands in for its controller gains, the object and the
        table. Each game has its own MjModel."""
        env = self._envs[i].unwrapped
        m = env.model
        body = mujoco.mjtObj.mjOBJ_BODY
        links = named_ids(m, body, m.nbody, "robot0:")
        links = links[(m.body_mass[links] > 0) & (m.body_mocapid[links] < 0)]
        robot = named_ids(m, body, m.nbody, "robot0:")
        obj = mujoco.mj_name2id(m, body, "object0")
        table = mujoco.mj_name2id(m, body, "table0")
        on_table_height = None
        if obj >= 0:
            z = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "object0:joint")] + 2
            start_z, goal_z = float(env.initial_qpos[z]), float(env.height_offset)

            def on_table_height(height: float) -> None:
                # The block starts on the table and push/slide goals lie on it.
                env.initial_qpos[z] = start_z + height
                env.height_offset = goal_z + height

        return PhysicsTargets(
            m,
            bodies=links,
            dofs=np.flatnonzero(np.isin(m.dof_bodyid, robot)),
            welds=np.flatnonzero(m.eq_type == mujoco.mjtEq.mjEQ_WELD),
            geoms=np.flatnonzero(np.isin(m.geom_bodyid, robot) & (m.geom_contype > 0)),
            object_body=obj if obj >= 0 else None,
            table_body=table if table >= 0 else None,
            on_table_height=on_table_height,
            owns_model=True,
        )

    def _reset_one(self, i: int) -> dict[str, np.ndarray]:
        for hook in self._reset_hooks:
            hook(i)
        # Seeded once: later resets continue the environment's own generator.
        obs, _ = self._envs[i].reset(seed=self._seeds[i])
        self._seeds[i] = None
        return obs

    @staticmethod
    def _stack(observations: list[dict[str, np.ndarray]]) -> GoalObs:
        def field(key: str) -> np.ndarray:
            return np.stack([o[key] for o in observations]).astype(np.float32)

        return GoalObs(field("observation"), field("achieved_goal"), field("desired_goal"))

    def reset(self) -> GoalObs:
        return self._stack([self._reset_one(i) for i in range(self.num_envs)])

    def step(
        self, actions: np.ndarray
    ) -> tuple[GoalObs, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        actions = np.asarray(actions, np.float32)
        if actions.shape != (self.num_envs, self.num_actions):
            raise ValueError(
                f"actions must have shape {(self.num_envs, self.num_actions)}, got {actions.shape}"
            )
        n = self.num_envs
        rewards = np.zeros(n, np.float32)
        terminated, truncated, success = (np.zeros(n, bool) for _ in range(3))
        finals, nexts = [], []
        for i, env in enumerate(self._envs):
            obs, reward, term, trunc, info = env.step(np.clip(actions[i], -1.0, 1.0))
            rewards[i], terminated[i], truncated[i] = reward, term, trunc
            success[i] = bool(info.get("is_success", False))
            finals.append(obs)
            nexts.append(self._reset_one(i) if term or trunc else obs)
        self.final_obs = self._stack(finals)
        return self._stack(nexts), rewards, terminated, truncated, {"is_success": success}

    def close(self) -> None:
        for env in self._envs:
            env.close()


def goal_env(num_envs: int, seed: int | None = None, task: str = "push") -> FetchVector:
    return FetchVector(num_envs, task, seed)
