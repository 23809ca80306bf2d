"""The off-policy learners' replay buffer, TorchRL's way: a storage of whole episodes, a
writer that fills it from decoded chunks, and a sampler that relabels goals at sample time
(Hindsight Experience Replay, Andrychowicz et al. 2017) with the task's pure reward
function.

Goal tasks end only by their time limit, so one chunk of `max_steps` decisions is one
episode (the goal rollout worker cuts them so), and no transition is terminal: the target
of the last step bootstraps from the observation after it (`bootstrap_obs`), never from
zero. `achieved_goal[t]` is the goal reached after step t.

Relabelling strategies (`strategy`):
- "future": with probability k / (k + 1) (k relabels per transition; 4 -> 80%), the goal
  becomes one reached later in the same episode: after step j, j uniform in t..T-1 (the
  state right after the transition counts: it was observed after it);
- "final": with that probability, the goal reached at the episode's end;
- "episode": with that probability, the goal reached after a uniform step of the episode;
- "none": never (plain experience replay).

Recurrent learners sample sequences instead (`HindsightSampler.sequences`): L consecutive
steps of one episode with one goal for all of them (relabelled as above, "future" counting
from the sequence's first step), the rewards recomputed at every step, and the episode's
inputs from its start, which warm up the recurrent state (burn-in).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from core.chunks import TrajectoryChunk
from core.config import ReplayConfig
from core.spaces import PolicyShape

Strategy = Literal["future", "final", "episode", "none"]
STRATEGIES: tuple[Strategy, ...] = ("future", "final", "episode", "none")


@dataclass
class Transitions:
    """A sampled batch, each array [B, ...]."""

    obs: np.ndarray  # observation before the step (no goal)
    actions: np.ndarray
    rewards: np.ndarray  # recomputed for `goals`
    next_obs: np.ndarray
    goals: np.ndarray  # desired goal, relabelled or not
    terminal: np.ndarray  # bool: never for time-limited goal tasks
    relabelled: np.ndarray  # bool: the goal was replaced
    dynamics: np.ndarray | None = None  # [B, P] the episode's physics (sim2real jobs)


@dataclass
class Sequences:
    """n sampled sequences of L steps (recurrent learners)."""

    inputs: np.ndarray  # [n, T + 1, obs + goal]: the whole episode, with this sequence's goal
    start: np.ndarray  # [n] the sequence's first step
    actions: np.ndarray  # [n, L, ...]
    rewards: np.ndarray  # [n, L] recomputed for the sequence's goal at every step
    terminal: np.ndarray  # [n, L]
    relabelled: np.ndarray  # [n]
    dynamics: np.ndarray | None = None  # [n, P] the episode's physics (sim2real jobs)

    @property
    def length(self) -> int:
        return int(self.rewards.shape[1])


class EpisodeStorage:
    """Ring storage of `capacity` episodes of exactly `length` steps."""

    def __init__(
        self,
        capacity: int,
        length: int,
        obs_dim: int,
        goal_dim: int,
        action_shape: tuple[int, ...],
        action_dtype: np.dtype,
        dynamics_dim: int = 0,
    ) -> None:
        """`dynamics_dim` > 0: each episode's physics parameters are kept too (the chunks'
        `dynamics` rows, one draw per episode)."""
        if capacity < 1 or length < 1:
            raise ValueError("EpisodeStorage needs capacity >= 1 and length >= 1")
        self.capacity, self.length = capacity, length
        self.obs = np.zeros((capacity, length + 1, obs_dim), np.float32)
        self.achieved = np.zeros((capacity, length, goal_dim), np.float32)
        self.desired = np.zeros((capacity, length, goal_dim), np.float32)
        self.actions = np.zeros((capacity, length, *action_shape), action_dtype)
        self.terminal = np.zeros((capacity, length), bool)
        self.dynamics = np.zeros((capacity, dynamics_dim), np.float32)
        self.size = 0  # episodes stored
        self.added = 0  # episodes ever written
        self._next = 0

    def add(self, chunk: TrajectoryChunk) -> None:
        """Writes one episode (a chunk of `length` steps with goals); the oldest is
        overwritten once the storage is full."""
        if chunk.num_steps != self.length:
            raise ValueError(f"an episode has {self.length} steps, this chunk {chunk.num_steps}")
        if chunk.desired_goal is None or chunk.achieved_goal is None:
            raise ValueError("replayed chunks need desired_goal and achieved_goal")
        if self.dynamics.shape[1] and chunk.dynamics is None:
            raise ValueError("this replay keeps each episode's physics: the chunk has none")
        i = self._next
        if self.dynamics.shape[1]:
            self.dynamics[i] = chunk.dynamics[0]  # type: ignore[index]
        self.obs[i, :-1] = chunk.obs
        self.obs[i, -1] = chunk.bootstrap_obs
        self.achieved[i] = chunk.achieved_goal
        self.desired[i] = chunk.desired_goal
        self.actions[i] = chunk.actions
        self.terminal[i] = chunk.dones
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self.added += 1

    @property
    def steps(self) -> int:
        return self.size * self.length


class HindsightSampler:
    """Uniform transitions from the storage with goals relabelled by `strategy`, rewards
    recomputed by `compute_reward(achieved, desired, info)`."""

    def __init__(
        self,
        storage: EpisodeStorage,
        compute_reward: Callable[[np.ndarray, np.ndarray, Any], np.ndarray],
        strategy: Strategy = "future",
        k: int = 4,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown relabelling strategy {strategy!r} (known: {STRATEGIES})")
        self.storage, self.compute_reward = storage, compute_reward
        self.strategy = strategy
        self.relabel_probability = 0.0 if strategy == "none" else 1.0 - 1.0 / (1.0 + k)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Transitions:
        store = self.storage
        if store.size == 0:
            raise ValueError("nothing stored to sample from")
        episodes = rng.integers(0, store.size, batch_size)
        steps = rng.integers(0, store.length, batch_size)
        relabel = rng.random(batch_size) < self.relabel_probability
        later = self.goal_steps(steps, rng)
        return self.transitions(episodes, steps, relabel, later)

    def goal_steps(self, steps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """For each sampled step t, the step whose achieved goal would replace the goal."""
        length = self.storage.length
        if self.strategy == "final":
            return np.full_like(steps, length - 1)
        if self.strategy == "episode":
            return rng.integers(0, length, len(steps))
        # future: uniform in t..T-1
        return steps + (rng.random(len(steps)) * (length - steps)).astype(np.int64)

    def transitions(
        self,
        episodes: np.ndarray,
        steps: np.ndarray,
        relabel: np.ndarray,
        goal_steps: np.ndarray,
    ) -> Transitions:
        """The transitions at (episode, step), goals replaced where `relabel` by the goal
        achieved after `goal_steps` (pure: the tests choose the indices)."""
        store = self.storage
        goals = store.desired[episodes, steps].copy()
        goals[relabel] = store.achieved[episodes[relabel], goal_steps[relabel]]
        achieved = store.achieved[episodes, steps]
        rewards = np.asarray(self.compute_reward(achieved, goals, None), np.float32)
        return Transitions(
            obs=store.obs[episodes, steps],
            actions=store.actions[episodes, steps],
            rewards=rewards,
            next_obs=store.obs[episodes, steps + 1],
            goals=goals,
            terminal=store.terminal[episodes, steps],
            relabelled=relabel,
            dynamics=store.dynamics[episodes],
        )

    def sample_sequences(self, count: int, length: int, rng: np.random.Generator) -> Sequences:
        store = self.storage
        if store.size == 0:
            raise ValueError("nothing stored to sample from")
        if not 1 <= length <= store.length:
            raise ValueError(f"sequences of {length} steps from episodes of {store.length}")
        episodes = rng.integers(0, store.size, count)
        start = rng.integers(0, store.length - length + 1, count)
        relabel = rng.random(count) < self.relabel_probability
        return self.sequences(episodes, start, length, relabel, self.goal_steps(start, rng))

    def sequences(
        self,
        episodes: np.ndarray,
        start: np.ndarray,
        length: int,
        relabel: np.ndarray,
        goal_steps: np.ndarray,
    ) -> Sequences:
        """The sequences of `length` steps from `start` in `episodes`, each with one goal:
        the goal reached after `goal_steps` where `relabel`, else the episode's own (pure:
        the tests choose the indices)."""
        store = self.storage
        steps = start[:, None] + np.arange(length)  # [n, L]
        goals = store.desired[episodes].copy()  # [n, T, G]: the episode's own, per step
        goals[relabel] = store.achieved[episodes[relabel], goal_steps[relabel]][:, None]
        goals = np.concatenate([goals, goals[:, -1:]], axis=1)  # the bootstrap step's too
        rows = episodes[:, None]
        achieved = store.achieved[rows, steps]
        rewards = self.compute_reward(
            achieved.reshape(-1, achieved.shape[-1]),
            goals[np.arange(len(episodes))[:, None], steps].reshape(-1, goals.shape[-1]),
            None,
        )
        return Sequences(
            inputs=np.concatenate([store.obs[episodes], goals], axis=2),
            start=start,
            actions=store.actions[rows, steps],
            rewards=np.asarray(rewards, np.float32).reshape(len(episodes), length),
            terminal=store.terminal[rows, steps],
            relabelled=relabel,
            dynamics=store.dynamics[episodes],
        )


class HindsightReplay:
    """The replay half of an off-policy algorithm (learner/dqn.py, sac.py, td3.py): stores
    each learner call's episodes, then hands out the batches that keep `replay_ratio`
    transitions sampled per env step stored (fractions carried over), none before
    `learning_starts` steps are stored."""

    def __init__(
        self,
        config: ReplayConfig,
        shape: PolicyShape,
        episode_length: int,
        compute_reward: Callable[[np.ndarray, np.ndarray, Any], np.ndarray],
        action_shape: tuple[int, ...],
        action_dtype: np.dtype,
        sequence_length: int = 0,
        dynamics_dim: int = 0,
    ) -> None:
        """`sequence_length` > 0: batches are `Sequences` of that many steps, as many as
        make `batch_size` steps (recurrent learners); else `Transitions`."""
        if sequence_length and (
            sequence_length > episode_length or config.batch_size % sequence_length
        ):
            raise ValueError(
                f"sequences of {sequence_length} steps must fit an episode ({episode_length}) "
                f"and divide batch_size ({config.batch_size})"
            )
        self.config, self.sequence_length = config, sequence_length
        self.storage = EpisodeStorage(
            max(1, config.buffer_steps // episode_length), episode_length,
            shape.obs_dim, shape.goal_dim, action_shape, action_dtype, dynamics_dim,
        )  # fmt: skip
        self.sampler = HindsightSampler(
            self.storage, compute_reward, config.her.strategy, config.her.k
        )
        self.rng = np.random.default_rng(config.seed)
        self._owed = 0.0
        self.gradient_steps = 0
        self.last_batches = 0  # batches the last `owed_batches` call owed

    def add(self, chunks: Sequence[TrajectoryChunk]) -> int:
        """Stores the episodes; returns their env steps."""
        for chunk in chunks:
            self.storage.add(chunk)
        return sum(c.num_steps for c in chunks)

    def sample(self, batch_size: int) -> Transitions:
        return self.sampler.sample(batch_size, self.rng)

    def owed_batches(self, new_steps: int) -> Iterator[Transitions | Sequences]:
        """The batches `new_steps` more stored env steps owe, one per gradient step."""
        cfg = self.config
        self.last_batches = 0
        if self.storage.steps < cfg.learning_starts:
            return
        self._owed += cfg.replay_ratio * new_steps / cfg.batch_size
        steps, self._owed = int(self._owed), self._owed - int(self._owed)
        self.last_batches = steps
        length = self.sequence_length
        for _ in range(steps):
            self.gradient_steps += 1
            if length:
                yield self.sampler.sample_sequences(cfg.batch_size // length, length, self.rng)
            else:
                yield self.sample(cfg.batch_size)

    def stats(self) -> dict[str, float]:
        """Scalars for the algorithm's update to return (GRADIENT_STEPS: this update's)."""
        return {
            "replay/episodes": float(self.storage.size),
            "replay/gradient_steps": float(self.gradient_steps),
            "gradient_steps": float(self.last_batches),
        }


class SeedWeights:
    """The algorithm's networks as first built, for `restart` (exploiters)."""

    def __init__(self, nets: Mapping[str, torch.nn.Module]) -> None:
        self._states = {
            name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in nets.items()
        }

    def restore(self, nets: Mapping[str, torch.nn.Module]) -> None:
        for name, net in nets.items():
            net.load_state_dict(self._states[name])


def polyak(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau source, in place."""
    with torch.no_grad():
        for p_target, p in zip(target.parameters(), source.parameters(), strict=True):
            p_target.lerp_(p, tau)
