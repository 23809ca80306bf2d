"""Vector envs whose games draw new dynamics every episode: the goal tasks' (Fetch) and
the batched two-seat envs' (sumo). Each wraps an env that offers `physics_targets(i)` and
`add_reset_hook`, and otherwise looks exactly like it.

`dynamics` (N, P) is each game's running episode's parameters, in the order of
`dynamics_names`; after a step, `final_dynamics` holds those of the episode each game
played during that step (the one that ended, for a game that restarted), as `final_obs`
holds its last observation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from core.dynamics import DynamicsRanges
from envs.goal import GoalObs
from envs.randomization.randomizer import Randomizer


class _Randomized:
    def __init__(self, inner: Any, ranges: DynamicsRanges, act_shape: tuple[int, ...], seed):
        if not hasattr(inner, "physics_targets"):
            raise ValueError(f"{type(inner).__name__} has no MuJoCo physics to randomise")
        self.inner = inner
        targets = [inner.physics_targets(i) for i in range(inner.num_envs)]
        self.randomizer = Randomizer(ranges, targets, act_shape, seed)
        self.dynamics_names = self.randomizer.names
        self.final_dynamics = self.randomizer.current.copy()
        inner.add_reset_hook(self.randomizer.on_episode)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # The wrapped env's settings (SumoEnv sets `shaping_steps` through here) stay its own.
        if name not in self.__dict__ and "inner" in self.__dict__ and hasattr(self.inner, name):
            setattr(self.inner, name, value)
        else:
            object.__setattr__(self, name, value)

    @property
    def dynamics(self) -> np.ndarray:
        return self.randomizer.current.copy()

    def _physics_step(self, actions: np.ndarray, expected: tuple[int, ...]) -> tuple:
        actions = np.asarray(actions)
        if actions.shape != expected:
            raise ValueError(f"actions must have shape {expected}, got {actions.shape}")
        before = self.randomizer.current.copy(), self.randomizer.noise_std
        self.randomizer.jitter()
        result = self.inner.step(self.randomizer.delayed(actions))
        self.final_dynamics = before[0]
        return result, before[1]


class RandomizedGoalVector(_Randomized):
    """A GoalVectorEnv (envs/goal) with randomised dynamics; noise only on `observation`:
    goals and rewards stay exact, as HER's relabelling needs."""

    def __init__(self, inner: Any, ranges: DynamicsRanges, seed: int | None = None) -> None:
        super().__init__(inner, ranges, (inner.num_actions,), seed)
        self.final_obs: GoalObs = inner.final_obs

    def reset(self) -> GoalObs:
        obs = self.inner.reset()
        return replace(obs, observation=self.randomizer.noisy(obs.observation))

    def step(
        self, actions: np.ndarray
    ) -> tuple[GoalObs, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        (obs, rewards, terminated, truncated, info), sigma = self._physics_step(
            actions, (self.inner.num_envs, self.inner.num_actions)
        )
        seen = self.randomizer.noisy(obs.observation)
        ended = (terminated | truncated)[:, None]
        final = self.inner.final_obs
        final_seen = np.where(ended, self.randomizer.noisy(final.observation, sigma), seen)
        self.final_obs = replace(final, observation=final_seen)
        return replace(obs, observation=seen), rewards, terminated, truncated, info


class RandomizedBatchedEnv(_Randomized):
    """A BatchedEnv (envs/batched.py: sumo) with randomised dynamics per game."""

    def __init__(self, inner: Any, ranges: DynamicsRanges, seed: int | None = None) -> None:
        super().__init__(inner, ranges, (2, inner.act_dim), seed)

    def reset(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return self.randomizer.noisy(self.inner.reset(*args, **kwargs))

    def reset_one(self, i: int, seed: int | None = None) -> np.ndarray:
        obs = self.inner.reset_one(i, seed)
        return self.randomizer.noisy(obs[None], self.randomizer.noise_std[i : i + 1])[0]

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        (obs, rewards, terminated, truncated), _ = self._physics_step(
            actions, (self.inner.num_envs, 2, self.inner.act_dim)
        )
        return self.randomizer.noisy(obs), rewards, terminated, truncated


def randomized(env: Any, ranges: DynamicsRanges, seed: int | None = None) -> Any:
    """`env` (a goal vector env or a batched two-seat env) with randomised dynamics."""
    if hasattr(env, "goal_dim"):
        return RandomizedGoalVector(env, ranges, seed)
    return RandomizedBatchedEnv(env, ranges, seed)
