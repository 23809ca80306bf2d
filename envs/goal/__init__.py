"""Goal-conditioned envs for HER jobs: one agent, a goal per episode, a batched and pure
reward function, episodes that end only by their time limit.

An env module for a goal job (config env.name) offers `goal_env(num_envs, seed=..., **kwargs)`
returning a `GoalVectorEnv`, and `compute_reward(achieved, desired, info)`, which the
learner calls to score relabelled goals (HER) without the env.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import numpy as np


@dataclass
class GoalObs:
    """Per game: the observation without goals, the goal it has reached, the goal it is
    after; each (N, dim) float32."""

    observation: np.ndarray
    achieved_goal: np.ndarray
    desired_goal: np.ndarray


class GoalVectorEnv(Protocol):
    """N games of one goal task stepped by one call. Games restart on their own when their
    time limit ends them (autoreset): `step` then returns the next episode's first
    observation and keeps the last one in `final_obs`."""

    num_envs: int
    obs_dim: int
    goal_dim: int
    num_actions: int  # discrete: the number of actions; continuous: the action's dimensions
    continuous: bool
    max_steps: int  # the time limit: every episode lasts exactly this many steps
    final_obs: GoalObs  # after a step: each game's observation before any restart

    def reset(self) -> GoalObs: ...

    def step(
        self, actions: np.ndarray
    ) -> tuple[GoalObs, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """-> observations, rewards (N,), terminated (N,), truncated (N,), info with
        "is_success" (N,) bool."""
        ...

    def close(self) -> None: ...


RewardFn = Callable[[np.ndarray, np.ndarray, Any], np.ndarray]


@dataclass(frozen=True)
class GoalTask:
    """An env module of a goal job: its vector env factory and reward function."""

    module: ModuleType

    @property
    def compute_reward(self) -> RewardFn:
        return self.module.compute_reward

    def make(self, num_envs: int, seed: int | None = None, **kwargs: Any) -> GoalVectorEnv:
        return self.module.goal_env(num_envs, seed=seed, **kwargs)


def goal_task(env_name: str) -> GoalTask | None:
    """The goal task of `env_name` (a module with `goal_env` and `compute_reward`), or
    None for any other env."""
    try:
        module = importlib.import_module(env_name)
    except ImportError:
        return None
    if hasattr(module, "goal_env") and hasattr(module, "compute_reward"):
        return GoalTask(module)
    return None
