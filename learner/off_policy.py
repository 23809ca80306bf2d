"""What the off-policy goal learners (learner/dqn.py, sac.py, td3.py) share besides their
losses: their replay (learner/replay.py) built for the job, the input normaliser's
feeding, and a sampled batch as tensors."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from core.config import JobConfig, ReplayConfig
from core.nets import InputNormalizer
from core.spaces import PolicyShape
from envs.goal import goal_task
from learner.replay import HindsightReplay, Transitions


def goal_replay(job: JobConfig, shape: PolicyShape, who: str, continuous: bool) -> HindsightReplay:
    """The hindsight replay of a goal job whose algorithm (`who`) needs `continuous` or
    discrete actions; a clear error for any other job."""
    if shape.continuous != continuous:
        raise ValueError(f"{who} needs {'continuous' if continuous else 'discrete'} actions")
    task = goal_task(job.env.name)
    if task is None:
        raise ValueError(f"{who} with HER needs a goal task; {job.env.name} is none")
    if not isinstance(job.algorithm, ReplayConfig):
        raise TypeError(f"{who} needs a replay algorithm config, got {job.algorithm.name}")
    action_shape, dtype = ((shape.num_actions,), np.float32) if continuous else ((), np.int64)
    sequences = getattr(job.algorithm, "sequence_length", 0) if job.model.lstm else 0
    randomization = job.env.randomization
    dynamics_dim = len(randomization.train.ranges()) if randomization is not None else 0
    return HindsightReplay(
        job.algorithm, shape, job.actors.chunk_length, task.compute_reward,
        action_shape, np.dtype(dtype), sequences, dynamics_dim,
    )  # fmt: skip


def scaled_dynamics(job: JobConfig, device: torch.device) -> Callable[[np.ndarray], torch.Tensor]:
    """The episode's physics parameters as an omniscient critic reads them: each mapped
    from its training range onto [-1, 1] (0 for a parameter held at one value)."""
    randomization = job.env.randomization
    if randomization is None or not randomization.train.ranges():
        raise ValueError("an omniscient critic needs env.randomization.train ranges")
    bounds = np.array(list(randomization.train.ranges().values()), np.float32)
    low, span = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
    safe = np.where(span > 0, span, 1.0)

    def scale(values: np.ndarray) -> torch.Tensor:
        scaled = np.where(span > 0, 2.0 * (values - low) / safe - 1.0, 0.0)
        return torch.from_numpy(scaled.astype(np.float32)).to(device)

    return scale


def update_normaliser(
    norm: InputNormalizer, replay: HindsightReplay, new_steps: int, device: torch.device
) -> None:
    """Feeds the normaliser as many transitions as were stored, sampled as training samples
    them (relabelled goals included), so its statistics are those of the inputs trained on."""
    seen = replay.sample(max(1, new_steps))
    norm.update(torch.from_numpy(np.concatenate([seen.obs, seen.goals], axis=1)).to(device))


def as_tensors(batch: Transitions, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(observation ⊕ goal, next observation ⊕ goal, actions, rewards, 1 - terminal)."""

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device)

    return (
        t(np.concatenate([batch.obs, batch.goals], axis=1)),
        t(np.concatenate([batch.next_obs, batch.goals], axis=1)),
        t(batch.actions),
        t(batch.rewards),
        1.0 - t(batch.terminal),
    )
