"""The per-episode draw and what it does between the policy and the physics.

`DynamicsSampler` draws one episode's parameters for game i from its own generator, so the
same seed gives the same sequence of dynamics per game however the games' episodes
interleave. `Randomizer` owns a vector env's games: at each game's reset it draws, writes
the physics (PhysicsTargets) and records the draw; at each step it delays the actions by
the episode's latency, jitters the timestep and adds observation noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.dynamics import BY_NAME, DynamicsRanges
from envs.randomization.targets import PhysicsTargets


class DynamicsSampler:
    def __init__(self, ranges: DynamicsRanges, num_games: int, seed: int | None) -> None:
        self.ranges = ranges.ranges()
        self.names: tuple[str, ...] = tuple(self.ranges)
        streams = np.random.SeedSequence(seed).spawn(num_games)
        self._rngs = [np.random.default_rng(s) for s in streams]

    def draw(self, game: int) -> dict[str, float]:
        rng = self._rngs[game]
        values: dict[str, float] = {}
        for name, (low, high) in self.ranges.items():
            if BY_NAME[name].integer:
                values[name] = float(rng.integers(int(low), int(high) + 1))
            else:
                values[name] = float(rng.uniform(low, high)) if high > low else float(low)
        return values


class Randomizer:
    """Randomised dynamics for the `num_games` games of one vector env.

    `current` (N, P) holds each game's parameters for its running episode in the order
    of `names`; `drawn` counts the episodes drawn per game. `on_episode` is the env's
    per-game reset hook."""

    def __init__(
        self,
        ranges: DynamicsRanges,
        targets: Sequence[PhysicsTargets],
        act_shape: tuple[int, ...],
        seed: int | None,
    ) -> None:
        n = len(targets)
        unsupported = sorted(set(ranges.ranges()) - targets[0].supported)
        if unsupported:
            raise ValueError(
                f"this env cannot randomise {', '.join(unsupported)} "
                f"(it can: {', '.join(sorted(targets[0].supported))})"
            )
        self.targets = list(targets)
        self.sampler = DynamicsSampler(ranges, n, seed)
        self.names = self.sampler.names
        self.current = np.zeros((n, len(self.names)))
        self.drawn = np.zeros(n, np.int64)
        ranges_set = ranges.ranges()
        max_latency = int(ranges_set["action_latency"][1]) if "action_latency" in ranges_set else 0
        # Row i: game i's last max_latency + 1 actions, newest first.
        self._actions = np.zeros((n, max_latency + 1, *act_shape))
        self._latency = np.zeros(n, np.int64)
        self._jitter = np.zeros(n)
        self._noise = np.zeros(n)
        self._rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(n + 1)[-1])

    def on_episode(self, game: int) -> None:
        values = self.sampler.draw(game)
        self.targets[game].apply(values)
        self.current[game] = [values[k] for k in self.names]
        self.drawn[game] += 1
        self._latency[game] = int(values.get("action_latency", 0))
        self._jitter[game] = values.get("timestep_jitter", 0.0)
        self._noise[game] = values.get("observation_noise", 0.0)
        self._actions[game] = 0.0  # before the first action arrives, the robot gets none

    def values(self, game: int) -> dict[str, float]:
        return dict(zip(self.names, self.current[game].tolist(), strict=True))

    def delayed(self, actions: np.ndarray) -> np.ndarray:
        """The actions the physics gets this step: each game's from `latency` steps ago."""
        if self._actions.shape[1] == 1:
            return actions
        self._actions = np.roll(self._actions, 1, axis=1)
        self._actions[:, 0] = actions
        return self._actions[np.arange(len(self._latency)), self._latency]

    def jitter(self) -> None:
        """Draws this control step's timestep for every game that jitters."""
        for game in np.flatnonzero(self._jitter):
            j = self._jitter[game]
            self.targets[game].jitter_timestep(float(self._rng.uniform(1.0 - j, 1.0 + j)))

    def noisy(self, observations: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
        """`observations` (N, ...) plus Gaussian noise of each game's std (default: the
        running episode's)."""
        sigma = self._noise if sigma is None else sigma
        if not sigma.any():
            return observations
        shape = (len(sigma),) + (1,) * (observations.ndim - 1)
        noise = self._rng.standard_normal(observations.shape) * sigma.reshape(shape)
        return (observations + noise).astype(observations.dtype)

    @property
    def noise_std(self) -> np.ndarray:
        return self._noise.copy()
