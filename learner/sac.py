"""Soft actor-critic over a hindsight replay buffer: the losses, on one screen.

As for DQN (learner/dqn.py), each learner call stores whole episodes and takes the
gradient steps that keep `replay_ratio` sampled transitions per env step. The inputs
(observation and goal) are normalised by running statistics kept in the actor
(core/nets.py `InputNormalizer`), updated from every stored episode's transitions with
relabelled goals too, so the actors, which receive the actor's weights, normalise as the
learner does. Critic targets are r + γ (min Q_target(s', a') - α log π(a'|s')) with a' from
the current policy, clipped to [-1/(1-γ), 0]; every target bootstraps (goal tasks end only
by their time limit). The temperature α follows the target entropy -|A|.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from core.chunks import TrajectoryChunk
from core.config import JobConfig, SACConfig
from core.nets import GaussianActor, TwinQ
from core.spaces import PolicyShape
from learner.off_policy import as_tensors, goal_replay, update_normaliser
from learner.replay import SeedWeights, Transitions, polyak


class Temperature(nn.Module):
    def __init__(self, initial: float) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor(float(np.log(initial))))

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()


class SAC:
    """The learner's algorithm: the actor ("actor", which the actors act with; it holds the
    input normaliser), twin critics ("critic"), their Polyak target ("critic_target"), the
    temperature ("temperature") and an Adam each."""

    def __init__(self, job: JobConfig, shape: PolicyShape, device: torch.device) -> None:
        cfg = job.algorithm
        if not isinstance(cfg, SACConfig):
            raise TypeError(f"SAC needs a SACConfig, got {type(cfg).__name__}")
        self.config, self.device = cfg, device
        self.replay = goal_replay(job, shape, "SAC", continuous=True)
        torch.manual_seed(cfg.seed)
        dim, act = shape.input_dim, shape.num_actions
        self.actor = GaussianActor(job.model, dim, act).to(device)
        self.critic = TwinQ(job.model, dim, act).to(device)
        self.critic_target = TwinQ(job.model, dim, act).to(device)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.temperature = Temperature(cfg.initial_alpha).to(device)
        self.target_entropy = -float(act)
        self._seed = SeedWeights(self.nets())
        self._new_optimizers()

    def _new_optimizers(self) -> None:
        lr = self.config.lr
        self.actor_adam = torch.optim.Adam(self.actor.parameters(), lr=lr)
        self.critic_adam = torch.optim.Adam(self.critic.parameters(), lr=lr)
        self.temperature_adam = torch.optim.Adam(self.temperature.parameters(), lr=lr)

    def nets(self) -> Mapping[str, nn.Module]:
        return {
            "actor": self.actor,
            "critic": self.critic,
            "critic_target": self.critic_target,
            "temperature": self.temperature,
        }

    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        return {
            "actor_adam": self.actor_adam,
            "critic_adam": self.critic_adam,
            "temperature_adam": self.temperature_adam,
        }

    def acting_state(self) -> Mapping[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.actor.state_dict().items()}

    def update(self, chunks: Sequence[TrajectoryChunk], steps_trained: int) -> dict[str, float]:
        new_steps = self.replay.add(chunks)
        update_normaliser(self.actor.norm, self.replay, new_steps, self.device)
        stats: dict[str, float] = {}
        for batch in self.replay.owed_batches(new_steps):
            stats = self._gradient_step(batch)
        return {**stats, **self.replay.stats()}

    def _gradient_step(self, batch: Transitions) -> dict[str, float]:
        cfg = self.config
        x, x_next, actions, rewards, alive = as_tensors(batch, self.device)
        alpha = self.temperature.alpha.detach()
        with torch.no_grad():
            norm_x, norm_next = self.actor.norm(x), self.actor.norm(x_next)
            next_action, next_logp = self.actor.sample(x_next)
            q1_next, q2_next = self.critic_target(norm_next, next_action)
            y = rewards + cfg.gamma * alive * (torch.min(q1_next, q2_next) - alpha * next_logp)
            if cfg.clip_target:
                y = y.clamp(-1.0 / (1.0 - cfg.gamma), 0.0)
        q1, q2 = self.critic(norm_x, actions)
        critic_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
        self.critic_adam.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_adam.step()

        new_action, logp = self.actor.sample(x)
        q1_new, q2_new = self.critic(norm_x, new_action)
        actor_loss = (alpha * logp - torch.min(q1_new, q2_new)).mean()
        self.actor_adam.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_adam.step()

        temperature_loss = -(self.temperature.log_alpha * (logp.detach() + self.target_entropy))
        self.temperature_adam.zero_grad(set_to_none=True)
        temperature_loss.mean().backward()
        self.temperature_adam.step()

        polyak(self.critic_target, self.critic, cfg.target_tau)
        return {
            "loss/critic": critic_loss.item(),
            "loss/actor": actor_loss.item(),
            "alpha": float(alpha),
            "q/mean": q1.mean().item(),
        }

    def restart(self) -> None:
        self._seed.restore(self.nets())
        self._new_optimizers()
