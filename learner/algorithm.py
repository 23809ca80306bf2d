"""The algorithm seam: what the generic learner (learner/learner.py) asks of an algorithm
family, and the registry that builds one by `algorithm.name`.

The learner owns everything an algorithm does not care about: claiming chunks from the
stream, dropping stale ones, dead-lettering bad ones, acknowledging after use, publishing
versions, snapshots, checkpoints and accounting. An algorithm owns its networks and
optimizers and turns a batch of chunks into one update (Acme's learner, Sample Factory's
learner subclass per algorithm family, without the subclassing).

Adding one: a config class (core/config.py `AlgorithmConfig` subclass, registered with
`register_algorithm_config`) and a builder registered here under the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import torch

from core.chunks import TrajectoryChunk
from core.config import JobConfig
from core.registry import Registry
from core.spaces import PolicyShape

GRADIENT_STEPS = "gradient_steps"


class Algorithm(Protocol):
    def nets(self) -> Mapping[str, torch.nn.Module]:
        """Every network, by name: what a checkpoint saves and restores."""
        ...

    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        """Every optimizer, by name (distinct from the nets' names)."""
        ...

    def acting_state(self) -> Mapping[str, torch.Tensor]:
        """The weights the actors receive: the state dict of the network they act with
        (config `AlgorithmConfig.acting_net`)."""
        ...

    def update(self, chunks: Sequence[TrajectoryChunk], steps_trained: int) -> dict[str, float]:
        """One update from a batch of validated chunks (`steps_trained` before it, for
        schedules); returns scalars to log, and under GRADIENT_STEPS (if it counts them)
        the optimizer steps it took, which the learner adds up."""
        ...

    def restart(self) -> None:
        """Back to the seed weights with fresh optimizers (exploiters, after a snapshot)."""
        ...


# (the job's config, the acting policy's shape, the learner's device) -> the algorithm.
AlgorithmBuilder = Callable[[JobConfig, PolicyShape, torch.device], Algorithm]

BUILDERS: Registry[AlgorithmBuilder] = Registry("learner for algorithm")


def register_algorithm(name: str, builder: AlgorithmBuilder) -> None:
    BUILDERS.register(name, builder)


def build_algorithm(job: JobConfig, shape: PolicyShape, device: torch.device) -> Algorithm:
    return BUILDERS.get(job.algorithm.name)(job, shape, device)


def _register_builtins() -> None:
    from learner.dqn import DQN
    from learner.ppo_vtrace import PPOVTrace
    from learner.sac import SAC
    from learner.td3 import TD3

    register_algorithm("ppo_vtrace", PPOVTrace)
    register_algorithm("dqn", DQN)
    register_algorithm("sac", SAC)
    register_algorithm("td3", TD3)


_register_builtins()
