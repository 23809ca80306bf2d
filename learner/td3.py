"""TD3 over a hindsight replay buffer (Fujimoto et al. 2018): the losses, on one screen.

As for SAC (learner/sac.py): whole episodes stored per learner call, `replay_ratio`
transitions sampled per env step, inputs normalised by running statistics kept in the
actor and fed from relabelled samples. Critic targets are r + γ min Q_target(s', a') with
a' the target actor's action plus clipped Gaussian noise (target policy smoothing),
clipped to [-1/(1-γ), 0] and always bootstrapped. The actor and the targets move every
`policy_delay` critic steps; the actor's loss carries HER's action L2 penalty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from core.chunks import TrajectoryChunk
from core.config import JobConfig, TD3Config
from core.nets import DeterministicActor, TwinQ
from core.spaces import PolicyShape
from learner.off_policy import as_tensors, goal_replay, update_normaliser
from learner.replay import SeedWeights, Transitions, polyak


class TD3:
    """The learner's algorithm: the actor ("actor", which the actors act with; it holds the
    input normaliser), its target ("actor_target"), twin critics ("critic") and their
    target ("critic_target"), an Adam for the actor and one for the critics."""

    def __init__(self, job: JobConfig, shape: PolicyShape, device: torch.device) -> None:
        cfg = job.algorithm
        if not isinstance(cfg, TD3Config):
            raise TypeError(f"TD3 needs a TD3Config, got {type(cfg).__name__}")
        self.config, self.device = cfg, device
        self.replay = goal_replay(job, shape, "TD3", continuous=True)
        torch.manual_seed(cfg.seed)
        dim, act = shape.input_dim, shape.num_actions
        self.actor = DeterministicActor(job.model, dim, act).to(device)
        self.actor_target = DeterministicActor(job.model, dim, act).to(device)
        self.critic = TwinQ(job.model, dim, act).to(device)
        self.critic_target = TwinQ(job.model, dim, act).to(device)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.critic_target.load_state_dict(self.critic.state_dict())
        self._seed = SeedWeights(self.nets())
        self._new_optimizers()
        self._critic_steps = 0

    def _new_optimizers(self) -> None:
        self.actor_adam = torch.optim.Adam(self.actor.parameters(), lr=self.config.lr)
        self.critic_adam = torch.optim.Adam(self.critic.parameters(), lr=self.config.lr)

    def nets(self) -> Mapping[str, nn.Module]:
        return {
            "actor": self.actor,
            "actor_target": self.actor_target,
            "critic": self.critic,
            "critic_target": self.critic_target,
        }

    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        return {"actor_adam": self.actor_adam, "critic_adam": self.critic_adam}

    def acting_state(self) -> Mapping[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.actor.state_dict().items()}

    def update(self, chunks: Sequence[TrajectoryChunk], steps_trained: int) -> dict[str, float]:
        new_steps = self.replay.add(chunks)
        update_normaliser(self.actor.norm, self.replay, new_steps, self.device)
        # The target actor normalises with the same statistics.
        self.actor_target.norm.load_state_dict(self.actor.norm.state_dict())
        stats: dict[str, float] = {}
        for batch in self.replay.owed_batches(new_steps):
            stats.update(self._gradient_step(batch))
        return {**stats, **self.replay.stats()}

    def _gradient_step(self, batch: Transitions) -> dict[str, float]:
        cfg = self.config
        x, x_next, actions, rewards, alive = as_tensors(batch, self.device)
        norm_x = self.actor.norm(x)
        with torch.no_grad():
            smoothing = (torch.randn_like(actions) * cfg.target_noise).clamp(
                -cfg.target_noise_clip, cfg.target_noise_clip
            )
            next_action = (self.actor_target(x_next) + smoothing).clamp(-1.0, 1.0)
            q1_next, q2_next = self.critic_target(self.actor.norm(x_next), next_action)
            y = rewards + cfg.gamma * alive * torch.min(q1_next, q2_next)
            if cfg.clip_target:
                y = y.clamp(-1.0 / (1.0 - cfg.gamma), 0.0)
        q1, q2 = self.critic(norm_x, actions)
        critic_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
        self.critic_adam.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_adam.step()
        self._critic_steps += 1
        stats = {"loss/critic": critic_loss.item(), "q/mean": q1.mean().item()}
        if self._critic_steps % cfg.policy_delay:
            return stats

        action = self.actor(x)
        actor_loss = -self.critic(norm_x, action)[0].mean() + cfg.action_l2 * action.pow(2).mean()
        self.actor_adam.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_adam.step()
        polyak(self.actor_target, self.actor, cfg.target_tau)
        polyak(self.critic_target, self.critic, cfg.target_tau)
        return {**stats, "loss/actor": actor_loss.item()}

    def restart(self) -> None:
        self._seed.restore(self.nets())
        self._new_optimizers()
