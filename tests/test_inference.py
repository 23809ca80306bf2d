"""actors/inference.py: the numpy copy of an MLP policy computes what the torch network
computes, and samples from the distribution it defines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actors.inference import NumpyMlpPolicy, TorchPolicy, inference_policy
from actors.players import Batch, Player
from core.config import ModelConfig
from core.nets import build_net, log_prob


def act(
    policy: Player,
    obs: np.ndarray,
    mask: np.ndarray | None,
    rng: np.random.Generator,
    greedy: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(actions, log-probs, values) of a policy's decision (policies read no game)."""
    batch = Batch(obs, mask, rng, None, [], [], greedy=greedy)  # type: ignore[arg-type]
    decision = policy.act(batch)
    return decision.actions, decision.stored["behaviour_logp"], decision.stored["values"]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("continuous", [False, True])
def test_numpy_forward_and_log_probs_match_torch(activation: str, continuous: bool) -> None:
    torch.manual_seed(0)
    net = build_net(ModelConfig(hidden=[32, 16], activation=activation), 12, 5, continuous)
    with torch.no_grad():  # a trained-looking head, not the near-zero initial one
        net.policy.weight.normal_()
        if continuous:
            net.log_std.copy_(torch.linspace(-1.0, 0.5, 5))
    policy = NumpyMlpPolicy(net)
    rng = np.random.default_rng(1)
    obs = rng.standard_normal((64, 12)).astype(np.float32)
    mask = (rng.random((64, 5)) < 0.6).astype(np.uint8)
    mask[:, 0] = 1  # at least one legal action per row
    use_mask = None if continuous else mask
    out, values = policy.forward(obs)
    with torch.no_grad():
        t_out, t_values = net(torch.from_numpy(obs))
    np.testing.assert_allclose(out, t_out.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values, t_values.numpy(), rtol=1e-5, atol=1e-5)
    actions, logp, values2 = act(policy, obs, use_mask, rng)
    np.testing.assert_array_equal(values, values2)
    with torch.no_grad():
        t_out, _ = net(torch.from_numpy(obs), None if use_mask is None else torch.from_numpy(mask))
        t_logp = log_prob(net, t_out, torch.from_numpy(actions))
    np.testing.assert_allclose(logp, t_logp.numpy(), rtol=1e-4, atol=1e-4)
    if not continuous:
        assert mask[np.arange(64), actions].all()  # never an illegal action


def test_discrete_sampling_follows_the_softmax() -> None:
    torch.manual_seed(0)
    net = build_net(ModelConfig(hidden=[8]), 4, 3)
    with torch.no_grad():
        net.policy.weight.zero_()
        net.policy.bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
    policy = NumpyMlpPolicy(net)
    n = 30_000
    actions, _, _ = act(policy, np.zeros((n, 4), np.float32), None, np.random.default_rng(2))
    p = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    share = np.bincount(actions, minlength=3) / n
    assert np.all(np.abs(share - p) < 4 * np.sqrt(p * (1 - p) / n)), share


def test_gaussian_sampling_has_the_policy_std() -> None:
    net = build_net(ModelConfig(hidden=[8]), 4, 2, continuous=True)
    with torch.no_grad():
        net.log_std.copy_(torch.tensor([-1.0, 0.0]))
    policy = NumpyMlpPolicy(net)
    obs = np.zeros((20_000, 4), np.float32)
    actions, _, _ = act(policy, obs, None, np.random.default_rng(3))
    means, _ = policy.forward(obs)
    np.testing.assert_allclose((actions - means).std(axis=0), np.exp([-1.0, 0.0]), rtol=0.03)


def test_conv_torsos_keep_torch() -> None:
    config = ModelConfig(
        kind="conv", conv_input=(6, 7, 2), conv_channels=[4], conv_kernels=[3], hidden=[8]
    )
    net = build_net(config, 84, 7)
    policy = inference_policy(net, torch.Generator().manual_seed(0))
    assert isinstance(policy, TorchPolicy)
    actions, logp, values = act(
        policy, np.zeros((3, 84), np.float32), None, np.random.default_rng()
    )
    assert actions.shape == logp.shape == values.shape == (3,)


@pytest.mark.parametrize("continuous", [False, True])
def test_greedy_acts_on_the_mode_like_torch(continuous: bool) -> None:
    torch.manual_seed(0)
    net = build_net(ModelConfig(hidden=[16]), 6, 4, continuous)
    with torch.no_grad():
        net.policy.weight.normal_()
    obs = np.random.default_rng(0).standard_normal((32, 6)).astype(np.float32)
    mask = None if continuous else np.tile(np.array([1, 0, 1, 1], np.uint8), (32, 1))
    rng = np.random.default_rng(1)
    fast, *_ = act(NumpyMlpPolicy(net), obs, mask, rng, greedy=True)
    reference, *_ = act(TorchPolicy(net, torch.Generator()), obs, mask, rng, greedy=True)
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-5)
    if not continuous:
        assert (fast != 1).all()  # the masked action is never the mode
