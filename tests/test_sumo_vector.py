"""SumoVector (N sumo games per call): game by game the same as N separate SumoEnv objects.

Game 0 sits at the world origin like a lone game, so with the disc and bug (no floor
contacts) it must match `SumoEnv` bit for bit through whole episodes while the other games
run beside it in the same model (no cross-talk). Games 1.. sit in arenas offset on a grid,
which changes floating-point rounding in the last bits, and the ants' floor contacts go
through one constraint solve with the other games' (its iteration count is shared); those
games must match their separate envs closely until such differences grow.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest

from envs.sumo import SumoEnv
from envs.sumo.indexing import AgentIndex
from envs.sumo.model import BODY_SPECS
from envs.sumo.rules import REASONS, judge_batch, sparse_rewards_batch
from envs.sumo.scripted import charge_action
from envs.sumo.vector import SumoVector

AGENTS = ("agent_0", "agent_1")
# Small rings so episodes also end by leaving the ring, not only by the time limit.
KWARGS = {"ring_radius": (1.0, 1.6), "shaping_steps": 150, "draw_reward": -0.25}


def _policy(
    bodies: tuple[str, str], obs: np.ndarray, act_dim: int, rng: np.random.Generator
) -> np.ndarray:
    """(n, 2, act_dim) float32, random (some beyond [-1, 1], to be clipped), except that a
    disc in seat 0 charges in all but the first game, so games end in different ways."""
    n = len(obs)
    acts = rng.uniform(-1.2, 1.2, (n, 2, act_dim)).astype(np.float32)
    if bodies[0] == "disc":
        charge = np.stack([charge_action(o) for o in obs[:, 0]])
        weight = np.where(np.arange(n) == 0, 0.0, 0.8)[:, None]
        acts[:, 0, :2] = weight * charge + (1.0 - weight) * acts[:, 0, :2]
    return acts


@pytest.mark.parametrize(
    ("bodies", "max_steps", "steps"),
    [(("disc", "disc"), 100, 400), (("ant", "ant"), 25, 90), (("disc", "ant"), 30, 110)],
)
def test_matches_separate_envs_across_episodes(
    bodies: tuple[str, str], max_steps: int, steps: int
) -> None:
    n, seed = 4, 11
    vec = SumoVector(n, bodies=bodies, max_steps=max_steps, seed=seed, autoreset=True, **KWARGS)
    envs = [SumoEnv(bodies=bodies, max_steps=max_steps, seed=seed + i, **KWARGS) for i in range(n)]
    sizes = vec.obs_sizes
    obs = vec.reset()
    for i, e in enumerate(envs):
        env_obs, info = e.reset()
        assert info["agent_0"]["ring_radius"] == vec.radius[i]
        for k, agent in enumerate(AGENTS):
            _close(obs[i, k, : sizes[k]], env_obs[agent])

    rng = np.random.default_rng(0)
    reasons: set[str] = set()
    close_steps = 20  # inexact games: compared to a tolerance for this many steps, then ignored
    exact = [i == 0 and "ant" not in bodies for i in range(n)]
    for t in range(steps):
        if t % 17 == 16:  # teleport an agent out of the ring: the same in both
            i, k = (t // 17) % n, (t // 34) % 2
            xy = (0.0, vec.radius[i] + 0.3)
            vec.set_torso_xy(i, k, xy)
            envs[i].set_torso_xy(AGENTS[k], xy)
        actions = _policy(bodies, obs, vec.act_dim, rng)
        obs, rewards, terminated, truncated = vec.step(actions)
        reasons.update(vec.reason_name(i) for i in np.flatnonzero(terminated | truncated))
        for i, e in enumerate(envs):
            if not exact[i] and t >= close_steps:
                continue
            same = np.testing.assert_array_equal if exact[i] else _close
            env_actions = {
                a: actions[i, k, : e.action_space(a).shape[0]] for k, a in enumerate(AGENTS)
            }
            env_obs, env_rew, env_term, env_trunc, infos = e.step(env_actions)
            assert terminated[i] == env_term["agent_0"] and truncated[i] == env_trunc["agent_0"]
            final = vec.final_obs if terminated[i] or truncated[i] else obs
            for k, agent in enumerate(AGENTS):
                same(final[i, k, : sizes[k]], env_obs[agent])
                assert not final[i, k, sizes[k] :].any()  # padding of the smaller body
                same(rewards[i, k], env_rew[agent])
                terms = infos[agent]["reward_terms"]
                for name, values in vec.reward_terms.items():
                    same(values[i, k], terms[name], err_msg=name)
                assert vec.shaping_weight[i] == terms["shaping_weight"]
            if terminated[i] or truncated[i]:
                winner = None if vec.winner[i] < 0 else AGENTS[vec.winner[i]]
                assert winner == infos["agent_0"]["winner"]
                assert vec.reason_name(i) == infos["agent_0"]["reason"]
                # Auto-reset: the row already holds the next episode, as env.reset() starts it.
                env_obs, info = e.reset()
                assert info["agent_0"]["ring_radius"] == vec.radius[i]
                for k, agent in enumerate(AGENTS):
                    same(obs[i, k, : sizes[k]], env_obs[agent])
    assert len(reasons) >= 2, reasons  # episodes ended in several ways
    if bodies == ("disc", "disc"):
        assert "out_of_ring" in reasons, reasons  # a win: contact, then a push out


def _close(actual: object, desired: object, err_msg: str = "") -> None:
    np.testing.assert_allclose(actual, desired, rtol=1e-6, atol=1e-9, err_msg=err_msg)


def test_games_do_not_interact() -> None:
    """Game 0 plays the same whether its neighbours push hard or stand still."""
    quiet, busy = (SumoVector(5, bodies=("disc", "bug"), seed=3, autoreset=True) for _ in "ab")
    obs_q, obs_b = quiet.reset(), busy.reset()
    rng = np.random.default_rng(1)
    for _ in range(250):
        act = rng.uniform(-1, 1, (5, 2, 2))
        still = np.zeros_like(act)
        still[0] = act[0]
        obs_q, *_ = quiet.step(still)
        obs_b, *_ = busy.step(act)
        np.testing.assert_array_equal(obs_q[0], obs_b[0])
    assert not np.array_equal(obs_q[1:], obs_b[1:])


def test_shapes_dtypes_and_padding() -> None:
    vec = SumoVector(3, bodies=("ant", "disc"), seed=0)
    assert vec.obs_sizes == (98, 34) and vec.obs_dim == 98
    assert vec.act_dim == 8
    obs = vec.reset()
    assert obs.shape == (3, 2, 98) and obs.dtype == np.float32
    assert not obs[:, 1, 34:].any()
    obs, rewards, terminated, truncated = vec.step(np.zeros((3, 2, 8), np.float32))
    assert obs.shape == (3, 2, 98) and obs.dtype == np.float32
    assert rewards.shape == (3, 2) and rewards.dtype == np.float64
    assert terminated.shape == truncated.shape == (3,) and terminated.dtype == bool
    assert all(v.shape == (3, 2) for v in vec.reward_terms.values())
    assert vec.winner.shape == vec.loser.shape == vec.reason.shape == (3,)
    assert vec.reset_one(1, seed=5).shape == (2, 98)


def test_bad_actions_raise_a_clear_error() -> None:
    vec = SumoVector(2, bodies=("disc", "disc"), seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros((2, 2, 2)))
    vec.reset()
    for shape in [(2, 2), (2, 2, 3), (3, 2, 2), (2, 1, 2)]:
        with pytest.raises(ValueError, match=r"actions must have shape .*\(2, 2, 2\)"):
            vec.step(np.zeros(shape))
    with pytest.raises(ValueError, match="numbers"):
        vec.step(np.full((2, 2, 2), "x"))
    with pytest.raises(ValueError, match="seeds"):
        vec.reset(seeds=[1, 2, 3])


def test_finished_games_stay_finished_until_reset() -> None:
    vec = SumoVector(3, bodies=("disc", "disc"), max_steps=5, seed=0)
    vec.reset()
    zeros = np.zeros((3, 2, 2))
    vec.set_torso_xy(1, 0, (vec.radius[1] + 0.5, 0.0))  # game 1: agent_0 leaves alone
    obs, rewards, terminated, truncated = vec.step(zeros)
    assert terminated.tolist() == [False, True, False]
    assert vec.reason_name(1) == "out_of_ring_without_contact"
    assert vec.winner[1] == -1 and vec.loser[1] == 0 and rewards[1, 0] == -1.0
    for _ in range(4):
        obs2, rewards, terminated, truncated = vec.step(np.ones((3, 2, 2)))
        assert terminated[1] and rewards[1].tolist() == [0.0, 0.0]  # frozen, earns nothing
        np.testing.assert_array_equal(obs2[1], obs[1])
        assert not vec.data.ctrl.reshape(3, -1)[1].any()  # its agents get no control
        assert vec.reason_name(1) == "out_of_ring_without_contact"
    assert truncated.tolist() == [True, False, True] and vec.done.all()
    assert vec.reason_name(0) == REASONS[-1] == "time_limit"
    vec.reset_one(1)
    assert vec.done.tolist() == [True, False, True] and vec.reason_name(1) == ""
    vec.step(zeros)
    assert vec.steps.tolist() == [5, 1, 5]


def test_seeds_reproduce_games() -> None:
    a = SumoVector(2, bodies=("ant", "ant"), seed=0)
    b = SumoVector(2, bodies=("ant", "ant"), seed=99)
    np.testing.assert_array_equal(a.reset(seeds=[3, 4]), b.reset(seeds=[3, 4]))
    actions = np.random.default_rng(1).uniform(-1, 1, (2, 2, 8))
    np.testing.assert_array_equal(a.step(actions)[0], b.step(actions)[0])
    # Game i of SumoVector(seed=s) plays like SumoEnv(seed=s + i).
    env = SumoEnv(bodies=("ant", "ant"), seed=100)
    c = SumoVector(2, bodies=("ant", "ant"), seed=99)
    np.testing.assert_array_equal(c.reset()[1, 0], env.reset()[0]["agent_0"])


def _reference_obs(env: SumoEnv, seat: int, steps: int) -> np.ndarray:
    """One agent's observation written out plainly from the layout in envs/sumo/observation.py,
    straight from MjData (contacts scanned in Python), as an oracle for the batched code."""
    d, me, opp = env.data, env._idx[seat], env._idx[1 - seat]

    def vel(idx: AgentIndex) -> np.ndarray:
        v = np.zeros(3)
        v[: len(idx.lin_vel)] = d.qvel[idx.lin_vel]
        return v

    def yaw_of(a: AgentIndex, b: AgentIndex) -> float:
        if a.free:
            w, x, y, z = d.xquat[a.torso_body]
            return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
        rel = d.xpos[b.torso_body] - d.xpos[a.torso_body]
        return np.arctan2(rel[1], rel[0])

    def quat_mul(p: Sequence[float], q: Sequence[float]) -> np.ndarray:
        w1, x1, y1, z1 = p
        w2, x2, y2, z2 = q
        return np.array(
            [
                w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
                w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
            ]
        )

    def frame_quat(a: AgentIndex, b: AgentIndex, yaw: float) -> np.ndarray:
        own = yaw_of(a, b)
        world = d.xquat[a.torso_body] if a.free else [np.cos(own / 2), 0, 0, np.sin(own / 2)]
        q = quat_mul([np.cos(yaw / 2), 0, 0, -np.sin(yaw / 2)], world)
        return -q if q[0] < -1e-9 or (abs(q[0]) <= 1e-9 and q[3] < 0) else q

    yaw = yaw_of(me, opp)
    rot = np.array([[np.cos(yaw), np.sin(yaw), 0], [-np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    pos, opp_pos = d.xpos[me.torso_body], d.xpos[opp.torso_body]
    ang = np.zeros(3)
    ang[: len(me.ang_vel)] = d.qvel[me.ang_vel]
    wrench = d.cfrc_ext[me.bodies].reshape(-1, 3) @ rot.T
    owner = {  # geom -> agent
        g: k
        for k, i in enumerate(env._idx)
        for g in np.flatnonzero(np.isin(env.model.geom_bodyid, i.bodies))
    }
    touching = any(
        owner.get(g1, -1) >= 0 and owner.get(g2, -1) >= 0 and owner[g1] != owner[g2]
        for g1, g2 in d.contact.geom[: d.ncon]
    )
    r = env.radius
    return np.concatenate(
        [
            rot @ pos,
            frame_quat(me, opp, yaw),
            rot @ vel(me),
            ang,
            d.qpos[me.hinge_qpos],
            d.qvel[me.hinge_qvel],
            rot @ (opp_pos - pos),
            rot @ (vel(opp) - vel(me)),
            frame_quat(opp, me, yaw),
            [r - np.hypot(*pos[:2]), r - np.hypot(*opp_pos[:2]), r],
            np.clip(wrench.ravel() / BODY_SPECS[env.bodies[seat]].contact_scale, -1, 1),
            [float(touching), 1 - steps / env.max_steps],
        ]
    )


@pytest.mark.parametrize("bodies", [("ant", "disc"), ("ant", "ant")])
def test_observations_match_a_plain_reference(bodies: tuple[str, str]) -> None:
    env = SumoEnv(bodies=bodies, ring_radius=(1.5, 2.0), max_steps=60, seed=2)
    obs, _ = env.reset()
    rng = np.random.default_rng(3)
    touched = 0
    for t in range(1, 60):
        if t % 20 == 0:  # push the agents together so they touch and exchange forces
            env.set_torso_xy("agent_0", (-0.3, 0.05))
            env.set_torso_xy("agent_1", (0.3, -0.05))
        obs, *_ = env.step({a: rng.uniform(-1, 1, env.action_space(a).shape) for a in AGENTS})
        if not env.agents:
            break
        for k, agent in enumerate(AGENTS):
            np.testing.assert_allclose(obs[agent], _reference_obs(env, k, t), atol=2e-6, rtol=1e-5)
        touched += obs["agent_0"][-2] == 1.0
    assert touched  # the contact terms were exercised


def test_batched_rules_on_every_case() -> None:
    """judge_batch / sparse_rewards_batch against the rules spelled out game by game."""
    cases = [
        (out, fallen, touched)
        for out in itertools.product([False, True], repeat=2)
        for fallen in itertools.product([False, True], repeat=2)
        for touched in (False, True)
    ]
    out, fallen, touched = (np.array([c[i] for c in cases]) for i in range(3))
    v = judge_batch(out, fallen, touched)
    sparse = sparse_rewards_batch(v.winner, v.loser, -0.5)
    for k, (out, fallen, touched) in enumerate(cases):
        lost = [out[0] or fallen[0], out[1] or fallen[1]]
        if not any(lost):
            expected = ("", -1, -1)
        elif all(lost):
            expected = ("both_lost", -1, -1)
        else:
            loser = lost.index(True)
            why = "out_of_ring" if out[loser] else "fell"
            expected = (why, 1 - loser, loser) if touched else (f"{why}_without_contact", -1, loser)
        assert (REASONS[v.reason[k]], v.winner[k], v.loser[k]) == expected, (out, fallen, touched)
        if expected[0]:
            rewards = [-0.5, -0.5]
            if expected[1] >= 0:
                rewards[expected[1]] = 1.0
            if expected[2] >= 0:
                rewards[expected[2]] = -1.0
            assert sparse[k].tolist() == rewards


def test_actions_become_actuator_inputs_as_documented() -> None:
    """actions_to_inputs against the conversion written out per seat: clipped to [-1, 1]
    (NaN kept), a disc's force turned into the world, a bug's thrust along its heading."""
    from envs.sumo.actuation import BUG_THRUST, COPY, DISC_FORCE, actions_to_inputs

    rng = np.random.default_rng(0)
    n, width = 5, 3
    actions = rng.uniform(-1.5, 1.5, (n, 2, 3)).astype(np.float32)
    actions[1, 0, 0] = np.nan
    yaw = rng.uniform(-np.pi, np.pi, (n, 2))
    cos, sin = np.cos(yaw), np.sin(yaw)
    take = np.array([0, 1, 3, 4, 5])  # seat 0 drives 2 motors, seat 1 three
    for kinds in ((DISC_FORCE, BUG_THRUST), (COPY, DISC_FORCE)):
        out = np.empty((n, len(take)))
        actions_to_inputs(actions, cos, sin, np.array(kinds), width, take, out)
        for i in range(n):
            inputs = []
            for s, kind in enumerate(kinds):
                a = np.clip(actions[i, s].astype(np.float64), -1.0, 1.0)
                c, sn = cos[i, s], sin[i, s]
                if kind == DISC_FORCE:
                    a[:2] = (c * a[0] - sn * a[1], sn * a[0] + c * a[1])
                elif kind == BUG_THRUST:
                    a = np.array([a[0] * c, a[0] * sn, a[1]])
                inputs += list(a)
            np.testing.assert_array_equal(out[i], np.array(inputs)[take])
        assert np.isnan(out[1, 0])


@pytest.mark.parametrize("bodies", [("bug", "bug"), ("disc", "ant")])
def test_history_stacks_earlier_frames_across_episodes(bodies: tuple[str, str]) -> None:
    """Frame k of a stacked observation is the plain observation from k * stride steps ago
    in the same episode, or the episode's first one before it had that many steps; a twin
    without history, stepped with the same actions, gives the plain frames."""
    n, frames, stride = 3, 3, 2
    common = {"bodies": bodies, "max_steps": 12, "seed": 5, "autoreset": True, **KWARGS}
    plain = SumoVector(n, **common)
    stacked = SumoVector(n, history=frames, history_stride=stride, **common)
    f = plain.obs_dim
    assert stacked.obs_dim == f * (1 + frames) and stacked.obs_sizes == (stacked.obs_dim,) * 2
    # per game: the plain frames of the episode so far (the first one is the reset's)
    episodes = [[row] for row in plain.reset()]
    obs = stacked.reset()
    rng = np.random.default_rng(1)
    restarts = 0
    for _ in range(40):
        for i in range(n):
            past = episodes[i]
            for k in range(1 + frames):
                want = past[max(len(past) - 1 - k * stride, 0)]
                np.testing.assert_array_equal(obs[i, :, k * f : (k + 1) * f], want)
        actions = rng.uniform(-1, 1, (n, 2, plain.act_dim))
        frame, _, term, trunc = plain.step(actions)
        obs, _, term2, trunc2 = stacked.step(actions)
        np.testing.assert_array_equal(term | trunc, term2 | trunc2)
        for i in range(n):
            if term[i] or trunc[i]:  # the final observation stacks the ended episode
                np.testing.assert_array_equal(stacked.final_obs[i, :, :f], plain.final_obs[i])
                np.testing.assert_array_equal(
                    stacked.final_obs[i, :, f : 2 * f],
                    episodes[i][max(len(episodes[i]) - stride, 0)],
                )
                episodes[i] = [frame[i]]
                restarts += 1
            else:
                episodes[i].append(frame[i])
    assert restarts >= n  # every game went through at least one new episode


def test_history_with_a_bad_setting_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="history stride"):
        SumoVector(1, bodies=("bug", "bug"), history=2, history_stride=0)
    with pytest.raises(ValueError, match="history frames"):
        SumoVector(1, bodies=("bug", "bug"), history=-1)


def test_reset_hook_runs_for_each_game_that_starts_an_episode() -> None:
    """The per-game reset hook of the batched env contract (envs/batched.py): called for
    every game reset, reset_one and autoreset restarts, before the first observation, so
    a hook that moves game i's bodies is seen in the observation the step returns."""
    vec = SumoVector(3, ("disc", "disc"), max_steps=5, seed=0, autoreset=True)
    started: list[int] = []
    vec.add_reset_hook(started.append)
    vec.reset()
    assert started == [0, 1, 2]
    started.clear()
    vec.reset_one(1)
    assert started == [1]
    started.clear()
    actions = np.zeros((3, 2, vec.act_dim))
    for _ in range(4):
        vec.step(actions)
    assert started == []  # nothing ended yet
    _, _, terminated, truncated = vec.step(actions)  # the time limit: every game restarts
    assert (terminated | truncated).all() and sorted(started) == [0, 1, 2]

    # A hook that places game 2's first disc elsewhere: its fresh observation shows it.
    moved = SumoVector(3, ("disc", "disc"), max_steps=5, seed=0, autoreset=True)
    moved.add_reset_hook(lambda i: i == 2 and moved.set_torso_xy(i, 0, (0.3, 0.0)))
    plain = SumoVector(3, ("disc", "disc"), max_steps=5, seed=0, autoreset=True)
    a, b = moved.reset(), plain.reset()
    np.testing.assert_array_equal(a[:2], b[:2])
    assert not np.array_equal(a[2], b[2])
