"""A toy algorithm that lives only in the tests: REINFORCE without a baseline, returns
summed within each chunk. It plugs into the learner through the algorithm seam alone
(a config class and a builder, registered here), without a line changed under learner/
or actors/: tests/test_algorithm_seam.py trains connect_four with it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import numpy as np
import torch

from core.chunks import TrajectoryChunk
from core.config import AlgorithmConfig, JobConfig, register_algorithm_config
from core.nets import build_net, log_prob
from core.spaces import PolicyShape
from learner.algorithm import register_algorithm

NAME = "reinforce_toy"


class ReinforceConfig(AlgorithmConfig):
    # Its network is "policy" in checkpoints, and the actors act with it.
    acting_net: ClassVar[str] = "policy"
    name: Literal["reinforce_toy"] = NAME
    lr: float = 1e-3


class Reinforce:
    def __init__(self, job: JobConfig, shape: PolicyShape, device: torch.device) -> None:
        config, model = job.algorithm, job.model
        assert isinstance(config, ReinforceConfig)
        self.config, self.device = config, device
        torch.manual_seed(config.seed)
        self.net = build_net(model, shape.obs_dim, shape.num_actions, shape.continuous).to(device)
        self._seed_state = {k: v.clone() for k, v in self.net.state_dict().items()}
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)

    def nets(self) -> Mapping[str, torch.nn.Module]:
        return {"policy": self.net}

    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer}

    def acting_state(self) -> Mapping[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.net.state_dict().items()}

    def update(self, chunks: Sequence[TrajectoryChunk], steps_trained: int) -> dict[str, float]:
        returns = np.stack([self._returns(c) for c in chunks])  # [B, T]
        obs = torch.from_numpy(np.stack([c.obs for c in chunks])).flatten(0, 1)
        actions = torch.from_numpy(np.stack([c.actions for c in chunks])).flatten(0, 1)
        masks = [c.action_mask for c in chunks]
        mask = None if masks[0] is None else torch.from_numpy(np.stack(masks)).flatten(0, 1)
        out, _ = self.net(obs.to(self.device), None if mask is None else mask.to(self.device))
        logp = log_prob(self.net, out, actions.to(self.device))
        loss = -(logp * torch.from_numpy(returns).flatten().to(self.device)).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss/policy": loss.item()}

    def restart(self) -> None:
        self.net.load_state_dict(self._seed_state)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.config.lr)

    def _returns(self, chunk: TrajectoryChunk) -> np.ndarray:
        """Discounted rewards to go, restarting at each episode end, cut at the chunk's
        end (a toy: no bootstrap)."""
        rewards, dones = chunk.rewards, chunk.dones
        out = np.zeros(len(rewards), np.float32)
        running = 0.0
        for t in reversed(range(len(rewards))):
            running = rewards[t] + (0.0 if dones[t] else self.config.gamma * running)
            out[t] = running
        return out


register_algorithm_config(ReinforceConfig)
register_algorithm(NAME, Reinforce)
