"""The policy/value network, shared by actors (batched CPU inference) and the learner.

It lives in `core`, the floor both import, because both sides must build the identical
module to exchange weights as plain safetensors state dicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from core.config import ModelConfig

# Illegal actions get this logit instead of -inf so that every float that crosses the
# wire stays finite (the codec rejects non-finite values).
MASKED_LOGIT = -1e9


class PolicyValueNet(nn.Module):
    """A torso (MLP or conv) with a policy head and a scalar value head. The policy is
    categorical over `num_actions` (discrete) or a diagonal Gaussian over `num_actions`
    dimensions with a state-independent log-std (continuous, CleanRL's PPO choice).

    Gaussian means go through tanh, so they stay inside the env's [-1, 1] action box.
    Unbounded means drifted to +-3.5 on sumo: every sample then clips to the same action,
    the advantage no longer depends on the mean, and that part of the policy freezes."""

    def __init__(self, torso: nn.Module, width: int, num_actions: int, continuous: bool = False):
        super().__init__()
        self.torso = torso
        self.continuous = continuous
        self.policy = nn.Linear(width, num_actions)
        self.value = nn.Linear(width, 1)
        # Small final policy layer: start near-uniform (as CleanRL/PPO practice).
        nn.init.orthogonal_(self.policy.weight, gain=0.01)
        nn.init.zeros_(self.policy.bias)
        if continuous:
            self.log_std = nn.Parameter(torch.full((num_actions,), -0.5))

    def forward(
        self, obs: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (masked logits [B, A] or Gaussian means [B, D], values [B])."""
        return self._heads(self.torso(obs), mask)

    def _heads(
        self, h: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.policy(h)
        if self.continuous:
            logits = torch.tanh(logits)
        if mask is not None:
            logits = torch.where(mask.bool(), logits, torch.full_like(logits, MASKED_LOGIT))
        return logits, self.value(h).squeeze(-1)


class RecurrentPolicyValueNet(PolicyValueNet):
    """The policy/value net with memory (model.lstm > 0): the MLP torso, an LSTM cell,
    then the heads. Each agent's state (h and c side by side, `state_dim` floats) starts
    every episode at zeros; a chunk carries the state its first step started from."""

    def __init__(
        self, torso: nn.Module, width: int, lstm: int, num_actions: int, continuous: bool = False
    ):
        super().__init__(torso, lstm, num_actions, continuous)
        self.cell = nn.LSTMCell(width, lstm)
        self.lstm_size, self.state_dim = lstm, 2 * lstm

    def step(
        self, obs: torch.Tensor, state: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decision per row: (logits or means, values, the state after it)."""
        h, c = self.cell(self.torso(obs), state.split(self.lstm_size, dim=-1))
        return *self._heads(h, mask), torch.cat([h, c], dim=-1)

    def unroll(
        self,
        obs: torch.Tensor,
        state: torch.Tensor,
        dones: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Time-major obs [T, B, ...] from `state` [B, S], the state zeroed after each
        step that ended an episode (`dones` [T, B]): (outputs [T, B, A], values [T, B],
        the state after the last step)."""
        features = self.torso(obs.flatten(0, 1)).view(*obs.shape[:2], -1)
        h, c = state.split(self.lstm_size, dim=-1)
        hs = []
        for t in range(obs.shape[0]):
            h, c = self.cell(features[t], (h, c))
            hs.append(h)
            alive = (~dones[t].bool()).float()[:, None]
            h, c = h * alive, c * alive
        out, values = self._heads(torch.stack(hs), mask)
        return out, values, torch.cat([h, c], dim=-1)

    def forward(
        self, obs: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A first decision (from zeros): what a caller without state gets."""
        zeros = torch.zeros(obs.shape[0], self.state_dim, device=obs.device)
        out, values, _ = self.step(obs, zeros, mask)
        return out, values


class _BoardView(nn.Module):
    """Flat observations [B, H*W*C] (PettingZoo's HWC boards) -> [B, C, H, W]."""

    def __init__(self, shape: tuple[int, int, int]):
        super().__init__()
        self.shape = shape

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        h, w, c = self.shape
        return obs.view(-1, h, w, c).permute(0, 3, 1, 2)


def _mlp(width: int, hidden: Sequence[int], act: type[nn.Module]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(width, size), act()]
        width = size
    return layers


def build_net(
    config: ModelConfig, obs_dim: int, num_actions: int, continuous: bool = False
) -> PolicyValueNet:
    act: type[nn.Module] = nn.ReLU if config.activation == "relu" else nn.Tanh
    if config.kind == "mlp":
        torso = nn.Sequential(*_mlp(obs_dim, config.hidden, act))
        if config.lstm:
            width, lstm = config.hidden[-1], config.lstm
            return RecurrentPolicyValueNet(torso, width, lstm, num_actions, continuous)
        return PolicyValueNet(torso, config.hidden[-1], num_actions, continuous)
    if config.lstm:
        raise ValueError("model.lstm: recurrent nets have an MLP torso (model.kind: mlp)")
    assert config.conv_input is not None  # checked by ModelConfig
    h, w, c = config.conv_input
    if h * w * c != obs_dim:
        raise ValueError(
            f"model.conv_input {config.conv_input} has {h * w * c} cells; the env's "
            f"observation has {obs_dim}"
        )
    layers: list[nn.Module] = [_BoardView((h, w, c))]
    channels = c
    for out, kernel in zip(config.conv_channels, config.conv_kernels, strict=True):
        # "Same" padding spelled out: torch's padding="same" copies the input for even
        # kernels (4 sees a whole line of four).
        lo, hi = (kernel - 1) // 2, kernel // 2
        layers += [nn.ZeroPad2d((lo, hi, lo, hi)), nn.Conv2d(channels, out, kernel), act()]
        channels = out
    layers.append(nn.Flatten())
    layers += _mlp(channels * h * w, config.hidden, act)
    return PolicyValueNet(nn.Sequential(*layers), config.hidden[-1], num_actions, continuous)


class QNet(nn.Module):
    """The Q-value of every discrete action, from an MLP over the policy input (for goal
    tasks the observation and the goal side by side)."""

    def __init__(self, torso: nn.Module, width: int, num_actions: int) -> None:
        super().__init__()
        self.torso = torso
        self.q = nn.Linear(width, num_actions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.q(self.torso(x))


def build_q_net(config: ModelConfig, in_dim: int, num_actions: int) -> QNet:
    if config.kind != "mlp":
        raise ValueError("Q-networks have an MLP torso (model.kind: mlp)")
    act: type[nn.Module] = nn.ReLU if config.activation == "relu" else nn.Tanh
    torso = nn.Sequential(*_mlp(in_dim, config.hidden, act))
    return QNet(torso, config.hidden[-1], num_actions)


class InputNormalizer(nn.Module):
    """Running mean and standard deviation of a policy's inputs (observation and goal side
    by side), applied as (x - mean) / std clipped to +-clip (HER's baselines: 5). Its
    statistics are buffers, so they travel with the weights and every actor normalises
    as the learner does; only the learner updates them (`update`)."""

    def __init__(self, dim: int, clip: float = 5.0, min_std: float = 1e-2) -> None:
        super().__init__()
        self.clip, self.min_std = clip, min_std
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = self.var.sqrt().clamp(min=self.min_std)
        return ((x - self.mean) / std).clamp(-self.clip, self.clip)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merges the statistics of a batch [B, dim] (Chan et al.'s parallel update)."""
        n = float(x.shape[0])
        if n == 0:
            return
        batch_mean, batch_var = x.mean(dim=0), x.var(dim=0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * (n / total)
        m2 = self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)


def _torso(in_dim: int, config: ModelConfig) -> nn.Sequential:
    act: type[nn.Module] = nn.ReLU if config.activation == "relu" else nn.Tanh
    return nn.Sequential(*_mlp(in_dim, config.hidden, act))


class GaussianActor(nn.Module):
    """SAC's policy: a Gaussian over pre-squash actions, squashed by tanh into [-1, 1]; its
    inputs normalised by its own `InputNormalizer` (which the critics share)."""

    LOG_STD_RANGE = (-5.0, 2.0)

    def __init__(self, config: ModelConfig, in_dim: int, act_dim: int) -> None:
        super().__init__()
        self.norm = InputNormalizer(in_dim)
        self.torso = _torso(in_dim, config)
        self.mean = nn.Linear(config.hidden[-1], act_dim)
        self.log_std = nn.Linear(config.hidden[-1], act_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_std) of the pre-squash Gaussian."""
        h = self.torso(self.norm(x))
        low, high = self.LOG_STD_RANGE
        return self.mean(h), self.log_std(h).clamp(low, high)

    def sample(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(squashed action, its log-probability) with the reparameterisation trick."""
        return squashed_sample(*self(x))


def squashed_sample(mean: torch.Tensor, log_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A tanh-squashed Gaussian sample (reparameterised) and its log-probability."""
    pre = mean + log_std.exp() * torch.randn_like(mean)
    action = torch.tanh(pre)
    logp = (-0.5 * ((pre - mean) / log_std.exp()).pow(2) - log_std - _LOG_SQRT_2PI).sum(-1)
    # The tanh's change of variables, in its numerically stable form.
    logp -= (2.0 * (math.log(2.0) - pre - F.softplus(-2.0 * pre))).sum(-1)
    return action, logp


class RecurrentGaussianActor(nn.Module):
    """SAC's policy with memory (sim2real: it can infer the physics it is in from how its
    actions played out): the normalised input, an MLP (model.hidden), an LSTM cell of
    model.lstm units, then the Gaussian's heads. Its state per game, h and c side by side
    (`state_dim` floats), starts each episode at zeros."""

    def __init__(self, config: ModelConfig, in_dim: int, act_dim: int) -> None:
        super().__init__()
        self.norm = InputNormalizer(in_dim)
        self.torso = _torso(in_dim, config)
        self.cell = nn.LSTMCell(config.hidden[-1], config.lstm)
        self.mean = nn.Linear(config.lstm, act_dim)
        self.log_std = nn.Linear(config.lstm, act_dim)
        self.lstm_size = config.lstm
        self.state_dim = 2 * config.lstm

    def step(
        self, x: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step for a batch: x [B, in], state [B, state_dim] -> (mean, log_std, next
        state)."""
        h, c = self.cell(self.torso(self.norm(x)), state.split(self.lstm_size, dim=-1))
        low, high = GaussianActor.LOG_STD_RANGE
        return self.mean(h), self.log_std(h).clamp(low, high), torch.cat([h, c], dim=-1)

    def unroll(
        self, x: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, T, in] from `state` [B, state_dim] -> (means, log_stds [B, T, act], the
        states before each step [B, T + 1, state_dim]: index t is what step t starts from,
        the last one what follows the sequence)."""
        features = self.torso(self.norm(x))
        low, high = GaussianActor.LOG_STD_RANGE
        h, c = state.split(self.lstm_size, dim=-1)
        hs, states = [], [state]
        for t in range(x.shape[1]):
            h, c = self.cell(features[:, t], (h, c))
            hs.append(h)
            states.append(torch.cat([h, c], dim=-1))
        out = torch.stack(hs, dim=1)
        return self.mean(out), self.log_std(out).clamp(low, high), torch.stack(states, dim=1)


class DeterministicActor(nn.Module):
    """TD3's policy: an action in [-1, 1] (tanh) from the normalised input; its own
    `InputNormalizer`, which the critics share."""

    def __init__(self, config: ModelConfig, in_dim: int, act_dim: int) -> None:
        super().__init__()
        self.norm = InputNormalizer(in_dim)
        self.torso = _torso(in_dim, config)
        self.head = nn.Linear(config.hidden[-1], act_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.torso(self.norm(x))))


class TwinQ(nn.Module):
    """Two Q-networks over (normalised input, action), for clipped double-Q targets."""

    def __init__(self, config: ModelConfig, in_dim: int, act_dim: int) -> None:
        super().__init__()
        width = config.hidden[-1]
        self.q1 = nn.Sequential(_torso(in_dim + act_dim, config), nn.Linear(width, 1))
        self.q2 = nn.Sequential(_torso(in_dim + act_dim, config), nn.Linear(width, 1))

    def forward(self, x: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xa = torch.cat([x, action], dim=-1)
        return self.q1(xa).squeeze(-1), self.q2(xa).squeeze(-1)


_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def log_prob(net: PolicyValueNet, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Log-probability of `actions` per row, from the policy head output.

    The Gaussian's density is written out (torch.distributions.Normal's formula, the same
    operations in the same order): building a Normal object per call, with its argument
    checks, cost actors more than the network itself for small batches."""
    if net.continuous:
        log_std = net.log_std
        var = (2.0 * log_std).exp()
        return (-((actions - out) ** 2) / (2.0 * var) - log_std - _LOG_SQRT_2PI).sum(-1)
    logp_all = torch.log_softmax(out, dim=-1)
    return logp_all.gather(-1, actions.reshape(-1, 1)).squeeze(-1)


def log_prob_entropy(
    net: PolicyValueNet, out: torch.Tensor, actions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of `actions` and entropy, per row, from the policy head output."""
    if net.continuous:
        entropy = (0.5 + _LOG_SQRT_2PI + net.log_std).expand_as(out).sum(-1)
        return log_prob(net, out, actions), entropy
    logp_all = torch.log_softmax(out, dim=-1)
    logp = logp_all.gather(-1, actions.reshape(-1, 1)).squeeze(-1)
    return logp, -(logp_all.exp() * logp_all).sum(-1)


@torch.inference_mode()
def act(
    net: PolicyValueNet,
    obs: np.ndarray,
    mask: np.ndarray | None,
    generator: torch.Generator,
    greedy: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched action selection: (actions int64 [B] or float32 [B, D], log-probs, values).
    Continuous actions are the raw Gaussian samples; the env clips them to [-1, 1]."""
    obs_t = torch.from_numpy(obs)
    mask_t = None if mask is None else torch.from_numpy(mask)
    out, values = net(obs_t, mask_t)
    return _choose(net, out, values, generator, greedy)


@torch.inference_mode()
def act_recurrent(
    net: RecurrentPolicyValueNet,
    obs: np.ndarray,
    mask: np.ndarray | None,
    generator: torch.Generator,
    greedy: bool,
    state: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`act` for a recurrent net: from each row's `state` (None: zeros), and the state
    after the decision as a fourth result."""
    obs_t = torch.from_numpy(obs)
    mask_t = None if mask is None else torch.from_numpy(mask)
    before = torch.zeros(len(obs_t), net.state_dim) if state is None else torch.from_numpy(state)
    out, values, after = net.step(obs_t, before, mask_t)
    return *_choose(net, out, values, generator, greedy), after.numpy()


def _choose(
    net: PolicyValueNet,
    out: torch.Tensor,
    values: torch.Tensor,
    generator: torch.Generator,
    greedy: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if net.continuous:
        noise = torch.randn(out.shape, generator=generator)
        actions = out if greedy else out + net.log_std.exp() * noise
    elif greedy:
        actions = out.argmax(dim=-1)
    else:
        probs = torch.softmax(out, dim=-1)
        actions = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    logp = log_prob(net, out, actions)
    return actions.numpy(), logp.numpy(), values.numpy()
