"""PPO with V-trace off-policy correction: the loss, on one screen.

Chunks come from actors that may be a few versions behind, so plain GAE would be
biased. V-trace (IMPALA; RLlib's torch implementation) turns the behaviour data
into value targets `vs` and advantages for the learner's current policy; PPO's
clipped ratio (new policy / policy at the start of this update) then keeps the
several SGD passes over one batch from moving too far.

A recurrent net (model.lstm) runs through each chunk from the state its first step
started from (carried in the chunk), its state zeroed after every step that ended an
episode, as the actors ran it; minibatches are whole chunks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ray.rllib.algorithms.impala.torch.vtrace_torch_v2 import vtrace_torch

from core.chunks import TrajectoryChunk
from core.config import JobConfig, PPOVTraceConfig
from core.nets import PolicyValueNet, RecurrentPolicyValueNet, build_net, log_prob_entropy
from core.spaces import PolicyShape


@dataclass
class Batch:
    """Time-major tensors: [T, B, ...], bootstrap_obs [B, obs_dim]."""

    obs: torch.Tensor
    mask: torch.Tensor | None
    actions: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    behaviour_logp: torch.Tensor
    bootstrap_obs: torch.Tensor
    state: torch.Tensor | None = None  # [B, S] a recurrent net's state at each chunk's start


def _logp_values(
    net: PolicyValueNet, batch: Batch
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(logp, values, entropy) [T, B] of the batch's actions, and a recurrent net's state
    after the last step (None for others)."""
    t, b = batch.actions.shape[:2]
    after = None
    if isinstance(net, RecurrentPolicyValueNet):
        if batch.state is None:
            raise ValueError("a recurrent net's chunks carry their start state")
        out, values, after = net.unroll(batch.obs, batch.state, batch.dones, batch.mask)
        out, values = out.flatten(0, 1), values.flatten(0, 1)
    else:
        mask = None if batch.mask is None else batch.mask.flatten(0, 1)
        out, values = net(batch.obs.flatten(0, 1), mask)
    logp, entropy = log_prob_entropy(net, out, batch.actions.flatten(0, 1))
    return logp.view(t, b), values.view(t, b), entropy.view(t, b), after


@torch.no_grad()
def vtrace_targets(
    net: PolicyValueNet, batch: Batch, cfg: PPOVTraceConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(vs, advantages, logp of the current policy), all [T, B] and detached."""
    logp, values, _, after = _logp_values(net, batch)
    if isinstance(net, RecurrentPolicyValueNet) and after is not None:
        _, bootstrap, _ = net.step(batch.bootstrap_obs, after)
    else:
        _, bootstrap = net(batch.bootstrap_obs)
    discounts = cfg.gamma * (1.0 - batch.dones.float())
    vs, adv = vtrace_torch(
        target_action_log_probs=logp,
        behaviour_action_log_probs=batch.behaviour_logp,
        discounts=discounts,
        rewards=batch.rewards,
        values=values,
        bootstrap_values=bootstrap,
        clip_rho_threshold=cfg.vtrace_rho_bar,
        clip_pg_rho_threshold=cfg.vtrace_rho_bar,
    )
    return vs, adv, logp


_LOG_RATIO_MAX = 20.0


def ppo_loss(
    net: PolicyValueNet,
    batch: Batch,
    vs: torch.Tensor,
    adv: torch.Tensor,
    old_logp: torch.Tensor,
    cfg: PPOVTraceConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    logp, values, entropy, _ = _logp_values(net, batch)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    # The log-ratio is bounded before exp: float32 overflows past e^88, and an inf ratio
    # would turn the unchosen branch's zero gradient into NaN. Where it binds (a ratio
    # over e^20) the dual clip below has long taken over, or the clip for positive
    # advantages, so no chosen term depends on the bound.
    ratio = torch.exp(torch.clamp(logp - old_logp, max=_LOG_RATIO_MAX))
    clipped = torch.clamp(ratio, 1.0 - cfg.clip, 1.0 + cfg.clip)
    surrogate = torch.min(ratio * adv, clipped * adv)
    if cfg.dual_clip > 0.0:
        surrogate = torch.where(adv < 0.0, torch.max(surrogate, cfg.dual_clip * adv), surrogate)
    policy_loss = -surrogate.mean()
    value_loss = 0.5 * (values - vs).pow(2).mean()
    entropy_mean = entropy.mean()
    loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy_mean
    stats = {
        "loss/policy": policy_loss.item(),
        "loss/value": value_loss.item(),
        "loss/entropy": entropy_mean.item(),
        "loss/clip_fraction": ((ratio - 1.0).abs() > cfg.clip).float().mean().item(),
    }
    return loss, stats


def update(
    net: PolicyValueNet,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    cfg: PPOVTraceConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """Several epochs of minibatch SGD over one batch; minibatches split the B axis."""
    vs, adv, old_logp = vtrace_targets(net, batch, cfg)
    n = batch.actions.shape[1]
    stats: dict[str, float] = {}
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=generator)
        for idx in order.chunk(cfg.minibatches):
            mb = Batch(
                obs=batch.obs[:, idx],
                mask=None if batch.mask is None else batch.mask[:, idx],
                actions=batch.actions[:, idx],
                rewards=batch.rewards[:, idx],
                dones=batch.dones[:, idx],
                behaviour_logp=batch.behaviour_logp[:, idx],
                bootstrap_obs=batch.bootstrap_obs[idx],
                state=None if batch.state is None else batch.state[idx],
            )
            loss, stats = ppo_loss(net, mb, vs[:, idx], adv[:, idx], old_logp[:, idx], cfg)
            if not torch.isfinite(loss):
                # Inputs are checked finite by the codec, so this is divergence: stop
                # before NaN weights are published (the last checkpoint stays good).
                raise FloatingPointError(f"non-finite loss {stats}; lower algorithm.lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            stats["grad_norm"] = float(
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
            )
            optimizer.step()
    stats["value/vs_mean"] = vs.mean().item()
    return stats


def stack_chunks(chunks: Sequence[TrajectoryChunk], device: torch.device) -> Batch:
    """[B] chunks of T steps -> time-major [T, B] tensors on the device."""

    def tm(name: str, dtype: torch.dtype) -> torch.Tensor:
        arr = np.stack([c[name] for c in chunks], axis=1)
        return torch.from_numpy(arr).to(device=device, dtype=dtype)

    has_mask = chunks[0].action_mask is not None
    recurrent = chunks[0].recurrent_state is not None
    return Batch(
        obs=tm("obs", torch.float32),
        mask=tm("action_mask", torch.bool) if has_mask else None,
        actions=tm("actions", torch.int64 if has_mask else torch.float32),
        rewards=tm("rewards", torch.float32),
        dones=tm("dones", torch.bool),
        behaviour_logp=tm("behaviour_logp", torch.float32),
        bootstrap_obs=torch.from_numpy(np.stack([c["bootstrap_obs"] for c in chunks])).to(device),
        state=(
            torch.from_numpy(np.stack([c["recurrent_state"] for c in chunks])).to(device)
            if recurrent
            else None
        ),
    )


class PPOVTrace:
    """PPO/V-trace as the learner's algorithm (learner/algorithm.py): one policy/value
    network ("model", which the actors act with) and its Adam optimizer ("optim")."""

    def __init__(self, job: JobConfig, shape: PolicyShape, device: torch.device) -> None:
        config, model = job.algorithm, job.model
        if not isinstance(config, PPOVTraceConfig):
            raise TypeError(f"PPOVTrace needs a PPOVTraceConfig, got {type(config).__name__}")
        self.config, self.device = config, device
        torch.manual_seed(config.seed)
        self.net = build_net(model, shape.obs_dim, shape.num_actions, shape.continuous).to(device)
        # The seed weights exploiters restart from: the same seed rebuilds them on resume.
        self._seed_state = {k: v.clone() for k, v in self.net.state_dict().items()}
        self.optimizer = self._new_optimizer()
        self.generator = torch.Generator().manual_seed(config.seed)

    def _new_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.net.parameters(), lr=self.config.lr, eps=1e-5)

    def nets(self) -> Mapping[str, torch.nn.Module]:
        return {"model": self.net}

    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        return {"optim": self.optimizer}

    def acting_state(self) -> Mapping[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.net.state_dict().items()}

    def learning_rate(self, steps_trained: int) -> float:
        """lr, decayed linearly to 0 over lr_anneal_steps (if set)."""
        cfg = self.config
        if not cfg.lr_anneal_steps:
            return cfg.lr
        return cfg.lr * max(0.0, 1.0 - steps_trained / cfg.lr_anneal_steps)

    def update(self, chunks: Sequence[TrajectoryChunk], steps_trained: int) -> dict[str, float]:
        batch = stack_chunks(chunks, self.device)
        self.net.train()
        lr = self.learning_rate(steps_trained)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        stats = update(self.net, self.optimizer, batch, self.config, self.generator)
        stats["lr"] = lr
        return stats

    def restart(self) -> None:
        self.net.load_state_dict(self._seed_state)
        self.optimizer = self._new_optimizer()
