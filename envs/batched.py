"""The batched env contract: many two-seat games stepped by one call, for the batched
rollout worker (actors/vector_rollout.py).

An env module offers one through `vector_env(num_envs, seed=..., **env.kwargs)` beside its
PettingZoo constructors (envs/sumo/sumo_env.py returns a `SumoVector`); the worker then
moves (N, 2, obs) arrays in and (N, 2, act) arrays out instead of per-agent dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np


class BatchedEnv(Protocol):
    """Games restart on their own when they end (autoreset): `step` returns, for a game
    that ended, the first observation of its next episode, and `winner` says how the
    ended one went."""

    num_envs: int
    obs_dim: int
    act_dim: int  # the larger seat's, when the seats' bodies differ
    winner: np.ndarray  # (N,): seat that won the episode that ended at the last step; -1 none
    bodies: Sequence[str]  # what each seat plays (bots that know the game read it)

    def reset(self) -> np.ndarray:
        """Starts every game; (N, 2, obs_dim) float32 observations."""
        ...

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(N, 2, act_dim) actions -> observations (N, 2, obs_dim), rewards (N, 2),
        terminated (N,), truncated (N,)."""
        ...

    def add_reset_hook(self, hook: Callable[[int], None]) -> None:
        """`hook(i)` runs whenever game i starts an episode, before its first observation:
        the per-game reset hook (a dynamics randomiser draws game i's physics there)."""
        ...


VectorFactory = Callable[..., BatchedEnv]
