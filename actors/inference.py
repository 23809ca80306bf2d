"""Actors' inference: a policy network's forward pass and action sampling for one batch.

An actor runs one forward pass per policy that plays somewhere in its vector of games
each step: the learner, and every frozen league player drawn for a game (a league with
twenty snapshots puts ten or more of them in play at once). The batches are small and
torch's fixed cost per operator dominates them: ~100-150 µs per forward pass of a 64x64
MLP, whatever the batch. `NumpyMlpPolicy` copies an MLP's weights into numpy float32
arrays and runs the same arithmetic in ~a tenth of that; other torsos (conv) keep
torch (`TorchPolicy`). Both are players (actors/players.py): they return the actions
with their log-probabilities under the policy and the value estimates.

The numbers match torch's up to float32 rounding (different BLAS kernels), which is
what a behaviour log-probability needs: the learner recomputes it for the importance
ratio, and a ratio of 1 +- 1e-6 is exact for PPO's purposes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from actors.players import Batch, Decision, Player
from core.nets import (
    MASKED_LOGIT,
    DeterministicActor,
    GaussianActor,
    PolicyValueNet,
    QNet,
    RecurrentGaussianActor,
    RecurrentPolicyValueNet,
    act,
    act_recurrent,
)
from envs.bots import random_legal_actions

_LOG_SQRT_2PI = np.float32(0.5 * math.log(2.0 * math.pi))


def limit_inference_threads(threads: int) -> None:
    """Caps this process's torch and BLAS (numpy) thread pools: an actor's batches are
    small, and a BLAS pool spread over cores other processes use made a 256x256 numpy
    matmul 30x slower on the 2-core machine."""
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads, user_api="blas")
    torch.set_flush_denormal(True)  # as the learner does (learner/learner.py)


class TorchPolicy:
    """The network itself (any torso); samples with its own torch generator. The reference
    arithmetic: `selfplay eval` and `replay` act with it."""

    def __init__(self, net: PolicyValueNet, generator: torch.Generator) -> None:
        self.net, self.generator = net, generator

    def act(self, batch: Batch) -> Decision:
        net, obs, mask, greedy = self.net, batch.obs, batch.mask, batch.greedy
        if isinstance(net, RecurrentPolicyValueNet):
            actions, logp, values, state = act_recurrent(
                net, obs, mask, self.generator, greedy, batch.state
            )
            return Decision(actions, {"behaviour_logp": logp, "values": values}, state)
        actions, logp, values = act(net, obs, mask, self.generator, greedy)
        return Decision(actions, {"behaviour_logp": logp, "values": values})


class NumpyMlpPolicy:
    """An MLP `PolicyValueNet` in numpy (module docstring); a copy: reload after the
    network's weights change."""

    def __init__(self, net: PolicyValueNet) -> None:
        if not self.supports(net):
            raise ValueError("NumpyMlpPolicy needs an MLP torso (Linear + ReLU/Tanh layers)")
        linears = [m for m in net.torso if isinstance(m, nn.Linear)]
        self.relu = any(isinstance(m, nn.ReLU) for m in net.torso)

        def arrays(layer: nn.Linear) -> tuple[np.ndarray, np.ndarray]:
            w = layer.weight.detach().numpy().T.astype(np.float32, order="C")
            return w, layer.bias.detach().numpy().astype(np.float32)

        self.layers = [arrays(layer) for layer in linears]
        self.policy = arrays(net.policy)
        self.value = arrays(net.value)
        self.continuous = net.continuous
        if net.continuous:
            self.log_std = net.log_std.detach().numpy().astype(np.float32)
            self.std = np.exp(self.log_std)
            self.var2 = 2.0 * np.exp(2.0 * self.log_std)

    @staticmethod
    def supports(net: PolicyValueNet) -> bool:
        if isinstance(net, RecurrentPolicyValueNet):
            return False
        modules = list(net.torso) if isinstance(net.torso, nn.Sequential) else [net.torso]
        return bool(modules) and all(isinstance(m, nn.Linear | nn.ReLU | nn.Tanh) for m in modules)

    def forward(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(policy head output [B, A]: logits, or tanh means, values [B])."""
        h = obs
        for w, b in self.layers:
            h = h @ w
            h += b
            if self.relu:
                np.maximum(h, 0.0, out=h)
            else:
                np.tanh(h, out=h)
        out = h @ self.policy[0]
        out += self.policy[1]
        if self.continuous:
            np.tanh(out, out=out)
        values = h @ self.value[0]
        values += self.value[1]
        return out, values[:, 0]

    def act(self, batch: Batch) -> Decision:
        rng, mask = batch.rng, batch.mask
        out, values = self.forward(np.asarray(batch.obs, np.float32))
        if self.continuous:
            if batch.greedy:
                actions = out
            else:
                actions = out + self.std * rng.standard_normal(out.shape, dtype=np.float32)
            logp = (-((actions - out) ** 2) / self.var2 - self.log_std - _LOG_SQRT_2PI).sum(-1)
            return Decision(actions, {"behaviour_logp": logp, "values": values})
        if mask is not None:
            out = np.where(mask.astype(bool), out, np.float32(MASKED_LOGIT))
        top = out.max(axis=1, keepdims=True)
        logp_all = out - top
        logp_all -= np.log(np.exp(logp_all).sum(axis=1, keepdims=True))
        if batch.greedy:
            actions = logp_all.argmax(axis=1)
        else:
            # Gumbel-max: argmax(log p + Gumbel noise) is a draw from p; illegal actions
            # (log p ~ -1e9) never win.
            gumbel = -np.log(-np.log(rng.random(out.shape, dtype=np.float32) + 1e-20) + 1e-20)
            actions = (logp_all + gumbel).argmax(axis=1)
        logp = np.take_along_axis(logp_all, actions[:, None], axis=1)[:, 0]
        return Decision(actions.astype(np.int64), {"behaviour_logp": logp, "values": values})


class QPolicy:
    """A Q-network acting ε-greedily: the argmax of the Q-values, a uniformly random
    action with probability `epsilon` (never when the batch asks for greedy play)."""

    def __init__(self, net: QNet, generator: torch.Generator, epsilon: float = 0.0) -> None:
        self.net, self.epsilon = net, epsilon

    @torch.inference_mode()
    def act(self, batch: Batch) -> Decision:
        q = self.net(torch.from_numpy(np.asarray(batch.obs, np.float32)))
        if batch.mask is not None:
            q = torch.where(torch.from_numpy(batch.mask).bool(), q, MASKED_LOGIT)
        actions = q.argmax(dim=1).numpy().astype(np.int64)
        if not batch.greedy and self.epsilon > 0.0:
            explore = np.flatnonzero(batch.rng.random(len(actions)) < self.epsilon)
            if len(explore):
                mask = None if batch.mask is None else batch.mask[explore]
                actions[explore] = random_legal_actions(mask, q.shape[1], batch.rng, len(explore))
        return Decision(actions, {})


def random_actions(actions: np.ndarray, probability: float, rng: np.random.Generator) -> None:
    """Replaces each row of `actions` (in [-1, 1]) by a uniform one with `probability`."""
    if probability > 0.0:
        rows = np.flatnonzero(rng.random(len(actions)) < probability)
        actions[rows] = rng.uniform(-1.0, 1.0, (len(rows), actions.shape[1]))


class SquashedGaussianPolicy:
    """SAC's actor acting: a tanh-squashed Gaussian sample, or with probability
    `random_probability` a uniformly random action; greedy: the squashed mean. A recurrent
    actor reads each row's state from the batch and returns the next one."""

    def __init__(
        self,
        net: GaussianActor | RecurrentGaussianActor,
        generator: torch.Generator,
        random_probability: float = 0.0,
    ) -> None:
        self.net, self.generator, self.random_probability = net, generator, random_probability

    @torch.inference_mode()
    def act(self, batch: Batch) -> Decision:
        x = torch.from_numpy(np.asarray(batch.obs, np.float32))
        state = None
        if isinstance(self.net, RecurrentGaussianActor):
            before = batch.state
            if before is None:
                before = np.zeros((len(x), self.net.state_dim), np.float32)
            mean, log_std, after = self.net.step(x, torch.from_numpy(before))
            state = after.numpy()
        else:
            mean, log_std = self.net(x)
        if batch.greedy:
            return Decision(torch.tanh(mean).numpy(), {}, state)
        noise = torch.randn(mean.shape, generator=self.generator)
        actions = torch.tanh(mean + log_std.exp() * noise).numpy()
        random_actions(actions, self.random_probability, batch.rng)
        return Decision(actions.astype(np.float32), {}, state)


class NoisyDeterministicPolicy:
    """TD3's actor acting: its action plus Gaussian noise of scale `noise`, clipped to
    [-1, 1], or with probability `random_probability` a uniformly random action (HER's
    baselines); greedy: the action itself."""

    def __init__(
        self,
        net: DeterministicActor,
        generator: torch.Generator,
        random_probability: float = 0.0,
        noise: float = 0.0,
    ) -> None:
        self.net, self.random_probability, self.noise = net, random_probability, noise

    @torch.inference_mode()
    def act(self, batch: Batch) -> Decision:
        actions = self.net(torch.from_numpy(np.asarray(batch.obs, np.float32))).numpy()
        if batch.greedy:
            return Decision(actions, {})
        actions = np.clip(actions + batch.rng.normal(0.0, self.noise, actions.shape), -1.0, 1.0)
        random_actions(actions, self.random_probability, batch.rng)
        return Decision(actions.astype(np.float32), {})


def inference_policy(net: PolicyValueNet, generator: torch.Generator) -> Player:
    """The fastest policy object for `net` (a snapshot of its weights when numpy)."""
    return NumpyMlpPolicy(net) if NumpyMlpPolicy.supports(net) else TorchPolicy(net, generator)
