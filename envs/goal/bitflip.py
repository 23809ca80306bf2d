"""Bit flipping, HER's first experiment (Andrychowicz et al. 2017): n bits start at random
and must match a random goal; action i < n flips bit i, and action n flips nothing; the
reward is 0 when every bit matches and -1 otherwise; an episode lasts n steps and ends only
by that limit, and it succeeds if the bits match after its last step. (Without the no-op
a solved state could not be held: with an odd number of steps to spare the agent would
have to leave the goal, and at most about half the episodes could end on it.) Without
relabelling, a learner almost never sees a reward other than -1 once n passes ~15.

Vectorised: N games as (N, n) arrays, one numpy call per step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.goal import GoalObs

MAX_BITS = 256


def compute_reward(achieved: np.ndarray, desired: np.ndarray, info: Any = None) -> np.ndarray:
    """0 where every bit matches, else -1; batched over the leading axes, pure."""
    mismatch = (np.asarray(achieved) != np.asarray(desired)).any(axis=-1)
    return -mismatch.astype(np.float32)


class BitFlipVector:
    continuous = False

    def __init__(self, num_envs: int, n_bits: int = 10, seed: int | None = None) -> None:
        if not 1 <= n_bits <= MAX_BITS:
            raise ValueError(f"n_bits must be in 1..{MAX_BITS}, got {n_bits}")
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs, self.n_bits = num_envs, n_bits
        self.obs_dim = self.goal_dim = n_bits
        self.num_actions = n_bits + 1  # the last one flips nothing
        self.max_steps = n_bits
        self._rng = np.random.default_rng(seed)
        self._state = np.zeros((num_envs, n_bits), np.float32)
        self._goal = np.zeros((num_envs, n_bits), np.float32)
        self._steps = np.zeros(num_envs, np.int64)
        self.final_obs = self._obs()

    def _obs(self, rows: np.ndarray | slice = slice(None)) -> GoalObs:
        state = self._state[rows].copy()
        return GoalObs(state, state.copy(), self._goal[rows].copy())

    def _restart(self, rows: np.ndarray | slice) -> None:
        count = len(self._state[rows])
        self._state[rows] = self._rng.integers(0, 2, (count, self.n_bits))
        self._goal[rows] = self._rng.integers(0, 2, (count, self.n_bits))
        self._steps[rows] = 0

    def reset(self) -> GoalObs:
        self._restart(slice(None))
        return self._obs()

    def step(
        self, actions: np.ndarray
    ) -> tuple[GoalObs, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        bits = np.asarray(actions)
        if bits.shape != (self.num_envs,) or bits.dtype.kind not in "iu":
            raise ValueError(f"actions must be {self.num_envs} bit indices, got {bits.shape}")
        if (bits < 0).any() or (bits > self.n_bits).any():
            raise ValueError(f"an action is outside 0..{self.n_bits} (n flips nothing)")
        flip = np.flatnonzero(bits < self.n_bits)
        self._state[flip, bits[flip]] = 1.0 - self._state[flip, bits[flip]]
        self._steps += 1
        rewards = compute_reward(self._state, self._goal)
        success = rewards == 0.0
        truncated = self._steps >= self.max_steps
        terminated = np.zeros(self.num_envs, bool)
        self.final_obs = self._obs()
        ended = np.flatnonzero(truncated)
        if len(ended):
            self._restart(ended)
        return self._obs(), rewards, terminated, truncated, {"is_success": success}

    def close(self) -> None:
        pass


def goal_env(num_envs: int, seed: int | None = None, n_bits: int = 10) -> BitFlipVector:
    return BitFlipVector(num_envs, n_bits, seed)
