"""Soft actor-critic over a hindsight replay buffer: the losses, on one screen.

As for DQN (learner/dqn.py), each learner call stores whole episodes and takes the
gradient steps that keep `replay_ratio` sampled transitions per env step. The inputs
(observation and goal) are normalised by running statistics kept in the actor
(core/nets.py `InputNormalizer`), updated from every stored episode's transitions with
relabelled goals too, so the actors, which receive the actor's weights, normalise as the
learner does. Critic targets are r + γ (min Q_target(s', a') - α log π(a'|s')) with a' from
the current policy, clipped to [-1/(1-γ), 0]; every target bootstraps (goal tasks end only
by their time limit). The temperature α follows the target entropy -|A|.

With a recurrent actor (model.lstm > 0) a batch is `Sequences` of L steps, one goal
each: the actor runs from the episode's start without gradients up to the sequence
(burn-in), then through its L steps and the one after (whose action the last target
needs); the critics stay feed-forward and see each step's input as before.

`omniscient_critic`: the critics read the episode's physics parameters beside their
input (scaled to [-1, 1] by the training ranges); the actor, which the actors act with,
never sees them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from core.chunks import TrajectoryChunk
from core.config import JobConfig, SACConfig
from core.nets import GaussianActor, RecurrentGaussianActor, TwinQ, squashed_sample
from core.spaces import PolicyShape
from learner.off_policy import as_tensors, goal_replay, scaled_dynamics, update_normaliser
from learner.replay import SeedWeights, Sequences, Transitions, polyak


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
        actor_class = RecurrentGaussianActor if job.model.lstm else GaussianActor
        self.actor = actor_class(job.model, dim, act).to(device)
        self._dynamics = scaled_dynamics(job, device) if cfg.omniscient_critic else None
        extra = self.replay.storage.dynamics.shape[1] if cfg.omniscient_critic else 0
        self.critic = TwinQ(job.model, dim + extra, act).to(device)
        self.critic_target = TwinQ(job.model, dim + extra, act).to(device)
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
            if isinstance(batch, Sequences):
                stats = self._sequence_step(batch)
            else:
                stats = self._gradient_step(batch)
        return {**stats, **self.replay.stats()}

    def _gradient_step(self, batch: Transitions) -> dict[str, float]:
        x, x_next, actions, rewards, alive = as_tensors(batch, self.device)
        with torch.no_grad():
            next_action, next_logp = self.actor.sample(x_next)
        new_action, logp = self.actor.sample(x)  # the actor's loss needs its gradient
        next_sample, new_sample = (next_action, next_logp), (new_action, logp)
        seen = self._critic_view(batch.dynamics, 1)
        return self._losses(x, x_next, actions, rewards, alive, next_sample, new_sample, seen)

    def _sequence_step(self, batch: Sequences) -> dict[str, float]:
        actor = self.actor
        assert isinstance(actor, RecurrentGaussianActor)
        n, length = len(batch.start), batch.length

        def t(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device)

        inputs = t(batch.inputs)  # [n, T + 1, D]
        rows = torch.arange(n, device=self.device)
        start = torch.from_numpy(batch.start).to(self.device)
        with torch.no_grad():  # burn-in: the state each sequence starts from
            zeros = torch.zeros(n, actor.state_dim, device=self.device)
            _, _, states = actor.unroll(inputs[:, : int(batch.start.max()) + 1], zeros)
            state = states[rows, start]
        window = inputs[
            rows[:, None], start[:, None] + torch.arange(length + 1, device=self.device)
        ]
        mean, log_std, _ = actor.unroll(window, state)  # [n, L + 1, A]
        sampled, logp = squashed_sample(mean, log_std)
        flat = lambda x: x.reshape(n * length, *x.shape[2:])  # noqa: E731
        return self._losses(
            flat(window[:, :-1]),
            flat(window[:, 1:]),
            flat(t(batch.actions)),
            flat(t(batch.rewards)),
            1.0 - flat(t(batch.terminal)),
            (flat(sampled[:, 1:].detach()), flat(logp[:, 1:].detach())),
            (flat(sampled[:, :-1]), flat(logp[:, :-1])),
            self._critic_view(batch.dynamics, length),
        )

    def _critic_view(self, dynamics: np.ndarray | None, repeat: int) -> torch.Tensor | None:
        """What an omniscient critic reads besides the input, per row (each episode's
        parameters `repeat` times in a row: a sequence's steps); None otherwise."""
        if self._dynamics is None:
            return None
        if dynamics is None:
            raise ValueError("the omniscient critic needs each episode's physics")
        return self._dynamics(np.repeat(dynamics, repeat, axis=0))

    def _losses(
        self,
        x: torch.Tensor,
        x_next: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        alive: torch.Tensor,
        next_sample: tuple[torch.Tensor, torch.Tensor],
        new_sample: tuple[torch.Tensor, torch.Tensor],
        known: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """One gradient step of the critics, the actor and the temperature. `next_sample`:
        the current policy's action at x_next and its log-probability (no gradient);
        `new_sample`: the same at x, with the actor's gradient; `known`: what only the
        critics read (the omniscient critic's physics), per row."""
        cfg = self.config
        alpha = self.temperature.alpha.detach()
        with torch.no_grad():
            norm_x, norm_next = self.actor.norm(x), self.actor.norm(x_next)
            if known is not None:
                norm_x, norm_next = (
                    torch.cat([norm_x, known], -1),
                    torch.cat([norm_next, known], -1),
                )
            next_action, next_logp = next_sample
            q1_next, q2_next = self.critic_target(norm_next, next_action)
            y = rewards + cfg.gamma * alive * (torch.min(q1_next, q2_next) - alpha * next_logp)
            if cfg.clip_target:
                y = y.clamp(-1.0 / (1.0 - cfg.gamma), 0.0)
        q1, q2 = self.critic(norm_x, actions)
        critic_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
        self.critic_adam.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_adam.step()

        new_action, logp = new_sample
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
