"""PPO with V-trace off-policy correction: the loss, on one screen.

Chunks come from actors that may be a few versions behind, so plain GAE would be
biased. V-trace (IMPALA; RLlib's torch implementation) turns the behaviour data
into value targets `vs` and advantages for the learner's current policy; PPO's
clipped ratio (new policy / policy at the start of this update) then keeps the
several SGD passes over one batch from moving too far.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from ray.rllib.algorithms.impala.torch.vtrace_torch_v2 import vtrace_torch

from core.config import AlgorithmConfig
from core.nets import PolicyValueNet, log_prob_entropy


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


def _logp_values(
    net: PolicyValueNet, obs: torch.Tensor, mask: torch.Tensor | None, actions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t, b = actions.shape[:2]
    out, values = net(obs.flatten(0, 1), None if mask is None else mask.flatten(0, 1))
    logp, entropy = log_prob_entropy(net, out, actions.flatten(0, 1))
    return logp.view(t, b), values.view(t, b), entropy.view(t, b)


@torch.no_grad()
def vtrace_targets(
    net: PolicyValueNet, batch: Batch, cfg: AlgorithmConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(vs, advantages, logp of the current policy), all [T, B] and detached."""
    logp, values, _ = _logp_values(net, batch.obs, batch.mask, batch.actions)
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
    cfg: AlgorithmConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    logp, values, entropy = _logp_values(net, batch.obs, batch.mask, batch.actions)
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
    cfg: AlgorithmConfig,
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
