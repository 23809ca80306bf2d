"""The policy/value network, shared by actors (batched CPU inference) and the learner.

It lives in `cluster` because both sides must build the identical module to exchange
weights as plain safetensors state dicts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from cluster.config import ModelConfig

# Illegal actions get this logit instead of -inf so that every float that crosses the
# wire stays finite (the codec rejects non-finite values).
MASKED_LOGIT = -1e9


class PolicyValueNet(nn.Module):
    """MLP torso with a categorical policy head and a scalar value head."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: Sequence[int], activation: str):
        super().__init__()
        act: type[nn.Module] = nn.ReLU if activation == "relu" else nn.Tanh
        layers: list[nn.Module] = []
        width = obs_dim
        for size in hidden:
            layers += [nn.Linear(width, size), act()]
            width = size
        self.torso = nn.Sequential(*layers)
        self.policy = nn.Linear(width, num_actions)
        self.value = nn.Linear(width, 1)
        # Small final policy layer: start near-uniform (as CleanRL/PPO practice).
        nn.init.orthogonal_(self.policy.weight, gain=0.01)
        nn.init.zeros_(self.policy.bias)

    def forward(
        self, obs: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (masked logits [B, A], values [B])."""
        h = self.torso(obs)
        logits = self.policy(h)
        if mask is not None:
            logits = torch.where(mask.bool(), logits, torch.full_like(logits, MASKED_LOGIT))
        return logits, self.value(h).squeeze(-1)


def build_net(config: ModelConfig, obs_dim: int, num_actions: int) -> PolicyValueNet:
    return PolicyValueNet(obs_dim, num_actions, config.hidden, config.activation)


@torch.no_grad()
def act(
    net: PolicyValueNet,
    obs: np.ndarray,
    mask: np.ndarray | None,
    generator: torch.Generator,
    greedy: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched action selection: (actions int64, log-probs float32, values float32)."""
    obs_t = torch.from_numpy(obs)
    mask_t = None if mask is None else torch.from_numpy(mask)
    logits, values = net(obs_t, mask_t)
    logp_all = torch.log_softmax(logits, dim=-1)
    if greedy:
        actions = logits.argmax(dim=-1)
    else:
        actions = torch.multinomial(logp_all.exp(), 1, generator=generator).squeeze(-1)
    logp = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    return actions.numpy(), logp.numpy(), values.numpy()


def random_legal_actions(
    mask: np.ndarray | None, num_actions: int, rng: np.random.Generator, batch: int
) -> np.ndarray:
    """The uniform-random player: a legal action chosen uniformly (the Elo anchor)."""
    if mask is None:
        return rng.integers(0, num_actions, size=batch)
    # Random scores on legal entries; argmax picks a uniform legal action per row.
    scores = (rng.random((batch, num_actions)) + 1.0) * mask
    return scores.argmax(axis=1)
