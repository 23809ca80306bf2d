"""The PPO/V-trace update and atomic checkpoints, without any service."""

from pathlib import Path

import pytest
import torch

from core.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from core.config import ModelConfig, PPOVTraceConfig
from core.nets import build_net
from learner.ppo_vtrace import Batch, update

T, B, OBS, A = 8, 16, 5, 3


def bandit_batch(net: torch.nn.Module, gen: torch.Generator) -> Batch:
    """One-step episodes where action 0 pays 1 and the others 0."""
    obs = torch.randn(T, B, OBS, generator=gen)
    with torch.no_grad():
        logits, _ = net(obs.flatten(0, 1))
        dist = torch.distributions.Categorical(logits=logits)
        actions = dist.sample()
        logp = dist.log_prob(actions)
    actions = actions.view(T, B)
    return Batch(
        obs=obs,
        mask=None,
        actions=actions,
        rewards=(actions == 0).float(),
        dones=torch.ones(T, B, dtype=torch.bool),
        behaviour_logp=logp.view(T, B),
        bootstrap_obs=torch.zeros(B, OBS),
    )


def prob_of_best(net: torch.nn.Module) -> float:
    with torch.no_grad():
        logits, _ = net(torch.randn(256, OBS, generator=torch.Generator().manual_seed(1)))
        return torch.softmax(logits, -1)[:, 0].mean().item()


def test_update_learns_a_bandit() -> None:
    torch.manual_seed(0)
    net = build_net(ModelConfig(hidden=(32,)), OBS, A)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    cfg = PPOVTraceConfig(minibatches=2)
    gen = torch.Generator().manual_seed(0)
    before = prob_of_best(net)
    for _ in range(30):
        stats = update(net, opt, bandit_batch(net, gen), cfg, gen)
    assert before < 0.45
    assert prob_of_best(net) > 0.8
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())


def test_masked_actions_stay_impossible() -> None:
    net = build_net(ModelConfig(hidden=(16,)), OBS, A)
    mask = torch.tensor([[True, False, True]]).expand(4, 3)
    logits, _ = net(torch.randn(4, OBS), mask)
    probs = torch.softmax(logits, -1)
    assert torch.all(probs[:, 1] == 0)
    assert torch.isfinite(logits).all()


def test_checkpoint_round_trip_restores_model_and_optimizer(tmp_path: Path) -> None:
    net = build_net(ModelConfig(hidden=(16,)), OBS, A)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    update(net, opt, bandit_batch(net, gen), PPOVTraceConfig(minibatches=1, epochs=1), gen)
    path = tmp_path / "ck" / "learner.safetensors"
    save_checkpoint(path, {"model": net}, {"optim": opt}, {"counters": {"version": 7}})
    assert [p.name for p in path.parent.iterdir()] == ["learner.safetensors"]  # no tmp left

    net2 = build_net(ModelConfig(hidden=(16,)), OBS, A)
    opt2 = torch.optim.Adam(net2.parameters(), lr=1e-3)
    meta = load_checkpoint(path, {"model": net2}, {"optim": opt2})
    assert meta["counters"]["version"] == 7
    for a, b in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for idx, entry in s1["state"].items():
        for key, value in entry.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(s2["state"][idx][key]))


def test_checkpoint_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(bad)
    net = build_net(ModelConfig(hidden=(16,)), OBS, A)
    path = tmp_path / "ok.safetensors"
    save_checkpoint(path, {"model": net}, {"optim": torch.optim.Adam(net.parameters())}, {})
    other = build_net(ModelConfig(hidden=(8,)), OBS, A)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(path, {"model": other})
    with pytest.raises(CheckpointError, match="has no network 'critic'"):
        load_checkpoint(path, {"critic": net})
    with pytest.raises(ValueError, match="must differ"):
        save_checkpoint(path, {"model": net}, {"model": torch.optim.Adam(net.parameters())}, {})


def test_checkpoint_holds_several_nets_and_reads_the_older_format(tmp_path: Path) -> None:
    actor, critic = (build_net(ModelConfig(hidden=(8,)), OBS, A) for _ in range(2))
    optimizers = {
        name: torch.optim.Adam(n.parameters()) for name, n in (("a", actor), ("c", critic))
    }
    path = tmp_path / "two.safetensors"
    save_checkpoint(path, {"actor": actor, "critic": critic}, optimizers, {"counters": {}})
    only_critic = build_net(ModelConfig(hidden=(8,)), OBS, A)
    load_checkpoint(path, {"critic": only_critic})  # a subset: eval loads one net
    for a, b in zip(critic.parameters(), only_critic.parameters(), strict=True):
        assert torch.equal(a, b)
    # Checkpoints written before named nets: "model.*", "optim.*", an "optimizer" header.
    import json

    from safetensors.torch import save

    net = build_net(ModelConfig(hidden=(8,)), OBS, A)
    opt = torch.optim.Adam(net.parameters())
    tensors = {f"model.{k}": v.contiguous() for k, v in net.state_dict().items()}
    groups = opt.state_dict()["param_groups"]
    header = {"meta": json.dumps({"counters": {"version": 3}}),
              "optimizer": json.dumps({"param_groups": groups, "scalars": {}})}  # fmt: skip
    old = tmp_path / "old.safetensors"
    old.write_bytes(save(tensors, metadata=header))
    net2 = build_net(ModelConfig(hidden=(8,)), OBS, A)
    meta = load_checkpoint(old, {"model": net2}, {"optim": torch.optim.Adam(net2.parameters())})
    assert meta["counters"]["version"] == 3
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), net2.parameters(), strict=True))


def test_conv_model_reads_boards_and_checks_their_size() -> None:
    cfg = ModelConfig(
        kind="conv", conv_input=(6, 7, 2), conv_channels=(8,), conv_kernels=(4,), hidden=(16,)
    )
    net = build_net(cfg, 84, 7)
    logits, values = net(torch.rand(5, 84), torch.ones(5, 7, dtype=torch.bool))
    assert logits.shape == (5, 7) and values.shape == (5,)
    # A piece moved on the board changes the output: the view keeps cells apart.
    board = torch.zeros(1, 6, 7, 2)
    moved = board.clone()
    board[0, 5, 0, 0], moved[0, 5, 6, 0] = 1.0, 1.0
    assert not torch.allclose(net(board.view(1, -1))[0], net(moved.view(1, -1))[0])
    with pytest.raises(ValueError, match="has 84 cells"):
        build_net(cfg, 42, 7)


def test_conv_model_config_is_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="conv_input"):
        ModelConfig(kind="conv")
    with pytest.raises(ValidationError, match="differ in length"):
        ModelConfig(kind="conv", conv_input=(6, 7, 2), conv_channels=(8, 8), conv_kernels=(3,))


def test_ppo_loss_stays_finite_and_dual_clipped_for_huge_ratios() -> None:
    """A sharp Gaussian moved onto an old action: logp rose by ~100 within one update
    (float32 exp overflows past 88). The loss must stay finite with finite gradients, and
    a negative advantage costs at most dual_clip times its size."""
    from learner.ppo_vtrace import ppo_loss

    torch.manual_seed(0)
    net = build_net(ModelConfig(hidden=(8,)), OBS, 2, continuous=True)
    batch = Batch(
        obs=torch.randn(1, 4, OBS),
        mask=None,
        actions=torch.zeros(1, 4, 2),
        rewards=torch.zeros(1, 4),
        dones=torch.ones(1, 4, dtype=torch.bool),
        behaviour_logp=torch.zeros(1, 4),
        bootstrap_obs=torch.zeros(4, OBS),
    )
    adv = torch.tensor([[-1.0, -1.0, 1.0, 1.0]])
    old_logp = torch.full((1, 4), -150.0)  # new / old = e^~150 for every row
    a = 1.0 / (4.0 / 3.0) ** 0.5  # |advantage| after normalisation (std of +-1 over 4)
    for dual_clip in (3.0, 0.0):
        cfg = PPOVTraceConfig(dual_clip=dual_clip)
        loss, stats = ppo_loss(net, batch, torch.zeros(1, 4), adv, old_logp, cfg)
        loss.backward()
        assert torch.isfinite(loss)
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
        net.zero_grad()
        if dual_clip:  # negative rows cost 3 |A|, positive rows gain (1 + clip) |A|
            expected = -(2 * (-3.0 * a) + 2 * (1.2 * a)) / 4
            assert stats["loss/policy"] == pytest.approx(expected, rel=1e-5)
        else:  # e^20 |A|: bounded, not capped
            assert stats["loss/policy"] > 1e6


def _cue_batch(net: torch.nn.Module, gen: torch.Generator, chunks: int = 32) -> Batch:
    """Two 4-step episodes per chunk: the first observation shows a cue (one of two), the
    others show nothing, and only the last step pays: 1 for the action that names the
    cue. A policy without memory cannot beat 50% there. Acted step by step, as the
    actors do (a recurrent net's state carried, zeroed after each episode's end)."""
    from core.nets import RecurrentPolicyValueNet, act_recurrent

    steps = 8
    cues = torch.randint(0, 2, (2, chunks), generator=gen)
    obs = torch.zeros(steps, chunks, 2)
    for episode in range(2):
        obs[4 * episode, torch.arange(chunks), cues[episode]] = 1.0
    dones = torch.zeros(steps, chunks, dtype=torch.bool)
    dones[3] = dones[7] = True
    state = None
    actions, logps = [], []
    for t in range(steps):
        if isinstance(net, RecurrentPolicyValueNet):
            a, lp, _, state = act_recurrent(net, obs[t].numpy(), None, gen, False, state)
            if dones[t].all():
                state = state * 0.0
        else:
            with torch.no_grad():
                logits, _ = net(obs[t])
            a = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(-1)
            lp = torch.log_softmax(logits, -1).gather(-1, a[:, None]).squeeze(-1)
            a, lp = a.numpy(), lp.numpy()
        actions.append(torch.as_tensor(a))
        logps.append(torch.as_tensor(lp))
    acts = torch.stack(actions)
    rewards = torch.zeros(steps, chunks)
    for episode in range(2):
        rewards[4 * episode + 3] = (acts[4 * episode + 3] == cues[episode]).float()
    recurrent = isinstance(net, RecurrentPolicyValueNet)
    return Batch(
        obs=obs,
        mask=None,
        actions=acts,
        rewards=rewards,
        dones=dones,
        behaviour_logp=torch.stack(logps),
        bootstrap_obs=torch.zeros(chunks, 2),
        state=torch.zeros(chunks, net.state_dim) if recurrent else None,  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("lstm", [0, 16], ids=["feed-forward", "lstm"])
def test_a_recurrent_net_learns_to_remember_what_a_feed_forward_one_cannot(lstm: int) -> None:
    torch.manual_seed(0)
    net = build_net(ModelConfig(hidden=(32,), lstm=lstm), 2, 2)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    cfg = PPOVTraceConfig(minibatches=2, gamma=1.0, entropy_coef=0.0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(80):
        update(net, opt, _cue_batch(net, gen), cfg, gen)
    final = _cue_batch(net, gen, chunks=512)
    paid = final.rewards[[3, 7]].mean().item()  # sampled actions at the paying steps
    if lstm:
        assert paid > 0.9, paid
    else:
        assert paid < 0.62, paid
