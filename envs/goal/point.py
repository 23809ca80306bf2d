"""A point on a plane that must reach a goal: the smallest continuous goal task, for
tests and for trying an algorithm in seconds before a Fetch run.

The point and the goal start uniformly in [-1, 1]^dim; an action in [-1, 1]^dim moves the
point by `speed` times it (clipped to the box); the reward is 0 within `threshold` of the
goal, else -1; an episode lasts `max_steps` steps and ends only by that limit, and it
succeeds if the point is within `threshold` after its last step. A random policy succeeds
about 1% of the time in two dimensions.

Vectorised: N games as (N, dim) arrays, one numpy call per step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.goal import GoalObs

THRESHOLD = 0.1


def compute_reward(achieved: np.ndarray, desired: np.ndarray, info: Any = None) -> np.ndarray:
    """0 within THRESHOLD of the goal, else -1; batched over the leading axes, pure."""
    distance = np.linalg.norm(np.asarray(achieved) - np.asarray(desired), axis=-1)
    return -(distance > THRESHOLD).astype(np.float32)


class PointVector:
    continuous = True

    def __init__(
        self,
        num_envs: int,
        dim: int = 2,
        max_steps: int = 20,
        speed: float = 0.2,
        seed: int | None = None,
    ) -> None:
        if num_envs < 1 or dim < 1 or max_steps < 1 or speed <= 0.0:
            raise ValueError("PointVector needs num_envs, dim, max_steps >= 1 and speed > 0")
        self.num_envs, self.max_steps, self.speed = num_envs, max_steps, speed
        self.obs_dim = self.goal_dim = self.num_actions = dim
        self._rng = np.random.default_rng(seed)
        self._pos = np.zeros((num_envs, dim), np.float32)
        self._goal = np.zeros((num_envs, dim), np.float32)
        self._steps = np.zeros(num_envs, np.int64)
        self.final_obs = self._obs()

    def _obs(self) -> GoalObs:
        return GoalObs(self._pos.copy(), self._pos.copy(), self._goal.copy())

    def _restart(self, rows: np.ndarray | slice) -> None:
        count = len(self._pos[rows])
        self._pos[rows] = self._rng.uniform(-1.0, 1.0, (count, self.goal_dim))
        self._goal[rows] = self._rng.uniform(-1.0, 1.0, (count, self.goal_dim))
        self._steps[rows] = 0

    def reset(self) -> GoalObs:
        self._restart(slice(None))
        return self._obs()

    def step(
        self, actions: np.ndarray
    ) -> tuple[GoalObs, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        moves = np.asarray(actions, np.float32)
        if moves.shape != self._pos.shape:
            raise ValueError(f"actions must have shape {self._pos.shape}, got {moves.shape}")
        moved = self._pos + self.speed * np.clip(moves, -1.0, 1.0)
        self._pos = np.clip(moved, -1.0, 1.0).astype(np.float32)
        self._steps += 1
        rewards = compute_reward(self._pos, self._goal)
        truncated = self._steps >= self.max_steps
        self.final_obs = self._obs()
        ended = np.flatnonzero(truncated)
        if len(ended):
            self._restart(ended)
        success = rewards == 0.0
        terminated = np.zeros(self.num_envs, bool)
        return self._obs(), rewards, terminated, truncated, {"is_success": success}

    def close(self) -> None:
        pass


def goal_env(
    num_envs: int, seed: int | None = None, dim: int = 2, max_steps: int = 20, speed: float = 0.2
) -> PointVector:
    return PointVector(num_envs, dim, max_steps, speed, seed)
