"""DQN over a hindsight replay buffer: the loss, on one screen.

Each learner call brings a few whole episodes from the stream; they go into the replay
buffer (learner/replay.py), and the algorithm then takes as many gradient steps as keep
`replay_ratio` transitions sampled per env step stored. A step samples a batch with goals
relabelled by HER, and regresses Q(s ⊕ g, a) on r + γ Q_target(s' ⊕ g, a*) with a* the
online network's argmax (double DQN), the target clipped to the range of returns of a
-1/0 reward ([-1/(1-γ), 0]), as HER's baselines do. Goal tasks end only by their time
limit, so every target bootstraps. The target network follows by Polyak averaging.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from core.chunks import TrajectoryChunk
from core.config import DQNConfig, JobConfig
from core.nets import QNet, build_q_net
from core.spaces import PolicyShape
from learner.off_policy import goal_replay
from learner.replay import SeedWeights, Transitions, polyak


def q_loss(
    net: QNet, target: QNet, batch: Transitions, cfg: DQNConfig, device: torch.device
) -> tuple[torch.Tensor, dict[str, float]]:
    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).to(device)

    x = torch.cat([t(batch.obs), t(batch.goals)], dim=1)
    x_next = torch.cat([t(batch.next_obs), t(batch.goals)], dim=1)
    actions = t(batch.actions).long()
    q = net(x).gather(1, actions[:, None])[:, 0]
    with torch.no_grad():
        q_next_all = target(x_next)
        if cfg.double_q:
            best = net(x_next).argmax(dim=1, keepdim=True)
            q_next = q_next_all.gather(1, best)[:, 0]
        else:
            q_next = q_next_all.max(dim=1).values
        alive = 1.0 - t(batch.terminal).float()
        y = t(batch.rewards) + cfg.gamma * alive * q_next
        if cfg.clip_target:
            y = y.clamp(-1.0 / (1.0 - cfg.gamma), 0.0)
    loss = F.mse_loss(q, y)
    return loss, {"loss/q": loss.item(), "q/mean": q.mean().item()}


class DQN:
    """The learner's algorithm (learner/algorithm.py): the online Q-network ("q", which
    the actors act with), its target ("q_target") and Adam ("adam")."""

    def __init__(self, job: JobConfig, shape: PolicyShape, device: torch.device) -> None:
        cfg = job.algorithm
        if not isinstance(cfg, DQNConfig):
            raise TypeError(f"DQN needs a DQNConfig, got {type(cfg).__name__}")
        self.replay = goal_replay(job, shape, "DQN", continuous=False)
        self.config, self.device = cfg, device
        torch.manual_seed(cfg.seed)
        self.net = build_q_net(job.model, shape.input_dim, shape.num_actions).to(device)
        self.target = build_q_net(job.model, shape.input_dim, shape.num_actions).to(device)
        self.target.load_state_dict(self.net.state_dict())
        self._seed = SeedWeights(self.nets())
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)

    def nets(self) -> Mapping[str, torch.nn.Module]:
        return {"q": self.net, "q_target": self.target}

    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer}

    def acting_state(self) -> Mapping[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.net.state_dict().items()}

    def update(self, chunks: Sequence[TrajectoryChunk], steps_trained: int) -> dict[str, float]:
        cfg = self.config
        stats: dict[str, float] = {}
        for batch in self.replay.owed_batches(self.replay.add(chunks)):
            loss, stats = q_loss(self.net, self.target, batch, cfg, self.device)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            polyak(self.target, self.net, cfg.target_tau)
        return {**stats, **self.replay.stats()}

    def restart(self) -> None:
        self._seed.restore(self.nets())
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.config.lr)
