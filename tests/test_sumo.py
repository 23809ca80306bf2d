"""MuJoCo sumo env: PettingZoo API conformance, rules, shaping anneal, determinism."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial

import mujoco
import numpy as np
import pytest
from pettingzoo.test import max_cycles_test, parallel_api_test, parallel_seed_test

from envs.sumo import SumoEnv, env, parallel_env
from envs.sumo.rules import Outcome, judge

BODIES = [("disc", "disc"), ("bug", "bug"), ("ant", "ant"), ("ant", "disc"), ("bug", "ant")]


def _zeros(e: SumoEnv) -> dict[str, np.ndarray]:
    return {a: np.zeros(e.action_space(a).shape, np.float32) for a in e.agents}


def _random(e: SumoEnv) -> dict[str, np.ndarray]:
    return {a: e.action_space(a).sample() for a in e.agents}


@pytest.mark.parametrize("bodies", [("disc", "disc"), ("bug", "bug"), ("ant", "ant")])
def test_parallel_api(bodies: tuple[str, str]) -> None:
    parallel_api_test(parallel_env(bodies=bodies, max_steps=60), num_cycles=200)


def test_parallel_api_with_history() -> None:
    e = parallel_env(bodies=("bug", "bug"), max_steps=60, history=2, history_stride=3)
    assert e.observation_space("agent_0").shape == (34 * 3,)
    parallel_api_test(e, num_cycles=200)


def test_parallel_seed() -> None:
    parallel_seed_test(partial(parallel_env, bodies=("ant", "disc"), max_steps=40), num_cycles=80)


def test_pettingzoo_max_cycles_test() -> None:
    import envs.sumo.sumo_env as module

    max_cycles_test(module)


def test_aec_constructor_steps() -> None:
    aec = env(bodies=("disc", "disc"), max_steps=5)
    aec.reset(seed=0)
    for agent in aec.agent_iter(max_iter=40):
        _, _, term, trunc, _ = aec.last()
        aec.step(None if term or trunc else aec.action_space(agent).sample())
    assert not aec.agents


@pytest.mark.parametrize("bodies", BODIES)
def test_bodies_build_step_and_shapes(bodies: tuple[str, str]) -> None:
    e = SumoEnv(bodies=bodies, max_steps=30)
    obs, _ = e.reset(seed=3)
    e.action_space("agent_0").seed(3)
    e.action_space("agent_1").seed(4)
    while e.agents:
        for agent, o in obs.items():
            assert o.dtype == np.float32 and e.observation_space(agent).contains(o)
            assert np.all(np.isfinite(o))
        obs, *_ = e.step(_random(e))
    sizes = {"disc": (34, 2), "bug": (34, 2), "ant": (98, 8)}
    for agent, kind in zip(("agent_0", "agent_1"), bodies, strict=True):
        assert e.observation_space(agent).shape == (sizes[kind][0],)
        assert e.action_space(agent).shape == (sizes[kind][1],)


def test_time_limit_is_draw() -> None:
    e = SumoEnv(bodies=("disc", "disc"), max_steps=25, draw_reward=-0.25, shaping_steps=0)
    e.reset(seed=0)
    steps = 0
    while e.agents:
        _, rewards, terms, truncs, infos = e.step(_zeros(e))
        steps += 1
    assert steps == 25
    assert all(truncs.values()) and not any(terms.values())
    assert infos["agent_0"]["winner"] is None and infos["agent_0"]["reason"] == "time_limit"
    assert rewards == {"agent_0": -0.25, "agent_1": -0.25}


def test_push_out_after_contact_wins() -> None:
    e = SumoEnv(bodies=("disc", "disc"), shaping_steps=0)
    e.reset(seed=0)
    # Overlapping discs (radius 0.3 each) touch on the next step.
    e.set_torso_xy("agent_0", (-0.28, 0.0))
    e.set_torso_xy("agent_1", (0.28, 0.0))
    obs, _, terms, _, _ = e.step(_zeros(e))
    assert not any(terms.values()) and obs["agent_0"][-2] == 1.0  # touching flag
    e.set_torso_xy("agent_1", (e.radius + 0.5, 0.0))
    _, rewards, terms, _, infos = e.step(_zeros(e))
    assert all(terms.values()) and not e.agents
    assert infos["agent_1"]["winner"] == "agent_0"
    assert infos["agent_1"]["reason"] == "out_of_ring"
    assert rewards == {"agent_0": 1.0, "agent_1": -1.0}


def test_out_without_contact_is_a_draw_the_leaver_still_loses() -> None:
    e = SumoEnv(bodies=("disc", "disc"), shaping_steps=0, draw_reward=-0.25)
    e.reset(seed=0)
    e.set_torso_xy("agent_0", (0.0, -e.radius - 0.5))
    _, rewards, terms, _, infos = e.step(_zeros(e))
    assert all(terms.values())
    assert infos["agent_0"]["winner"] is None
    assert infos["agent_0"]["reason"] == "out_of_ring_without_contact"
    assert rewards == {"agent_0": -1.0, "agent_1": -0.25}


def test_judge_fall_and_both_lost() -> None:
    assert judge((False, False), (False, True), touched=True) == Outcome(0, "fell", 1)
    assert judge((True, True), (False, False), touched=True) == Outcome(None, "both_lost")
    assert judge((False, False), (False, False), touched=True) is None


def test_shaping_anneals_to_zero() -> None:
    e = SumoEnv(bodies=("ant", "disc"), shaping_steps=10, max_steps=8)
    e.reset(seed=0)
    weights = []
    for _ in range(14):
        if not e.agents:
            e.reset()
        _, rewards, _, _, infos = e.step(_random(e))
        terms = infos["agent_0"]["reward_terms"]
        weights.append(terms["shaping_weight"])
        parts = sum(v for k, v in terms.items() if k != "shaping_weight")
        assert rewards["agent_0"] == pytest.approx(parts)
    assert weights[0] == 1.0 and weights[5] == pytest.approx(0.5)
    assert all(w == 0.0 for w in weights[10:])  # counted across the reset at step 8
    assert terms["upright"] == terms["approach"] == terms["push"] == 0.0
    assert np.all(np.diff(weights) <= 0)


def test_shaping_weights_from_a_config_mapping() -> None:
    """`env.kwargs.shaping` in a YAML config arrives as a mapping: the named terms are
    scaled, the others keep their defaults; unknown terms and non-numbers are refused."""
    runs = {}
    for name, shaping in (("default", None), ("scaled", {"approach": 2.0, "upright": 0.0})):
        e = SumoEnv(bodies=("ant", "ant"), max_steps=20, seed=3, shaping=shaping)
        e.reset(seed=3)
        act_rng = np.random.default_rng(0)
        got = []
        while e.agents:
            acts = {a: act_rng.uniform(-1, 1, e.action_space(a).shape) for a in e.agents}
            _, _, _, _, infos = e.step(acts)
            got.append(infos["agent_0"]["reward_terms"])
        runs[name] = got
    moved = [t["approach"] for t in runs["default"]]
    assert any(abs(x) > 1e-6 for x in moved)
    for default, scaled in zip(runs["default"], runs["scaled"], strict=True):
        assert scaled["approach"] == pytest.approx(4.0 * default["approach"])  # 2.0 vs 0.5
        assert scaled["push"] == pytest.approx(default["push"])
        assert scaled["upright"] == 0.0 and default["upright"] > 0.0
    with pytest.raises(ValueError, match="unknown shaping terms \\['approch'\\]"):
        SumoEnv(bodies=("disc", "disc"), shaping={"approch": 1.0})
    with pytest.raises(ValueError, match="finite number"):
        SumoEnv(bodies=("disc", "disc"), shaping={"push": "lots"})


def test_deterministic_given_seed() -> None:
    def rollout(seed: int) -> list[np.ndarray]:
        e = SumoEnv(bodies=("ant", "ant"), max_steps=40, seed=seed)
        obs, info = e.reset(seed=seed)
        act_rng = np.random.default_rng(0)
        out = [obs["agent_0"], np.array([info["agent_0"]["ring_radius"]])]
        while e.agents:
            acts = {a: act_rng.uniform(-1, 1, e.action_space(a).shape) for a in e.agents}
            obs, rewards, *_ = e.step(acts)
            out += [obs["agent_1"], np.array([rewards["agent_1"]])]
        return out

    a, b, c = rollout(7), rollout(7), rollout(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_ring_radius_drawn_in_range() -> None:
    e = SumoEnv(bodies=("disc", "disc"), ring_radius=(1.0, 2.0), seed=1)
    radii = [e.reset()[1]["agent_0"]["ring_radius"] for _ in range(20)]
    assert all(1.0 <= r <= 2.0 for r in radii) and len(set(radii)) > 1
    assert e.model.geom_size[e._ring_geom, 0] == radii[-1]


_RENDER_SCRIPT = """
from envs.sumo import SumoEnv
e = SumoEnv(bodies=("ant", "disc"), render_mode="rgb_array", render_size=64)
e.reset(seed=0)
frame = e.render()
e.close()
assert frame.shape == (64, 64, 3) and frame.std() > 0, frame.shape
print("ok")
"""


def test_render_rgb_array() -> None:
    # MuJoCo picks its GL backend at import, so render in a child process with a headless
    # backend (osmesa unless MUJOCO_GL says otherwise) instead of this test process.
    gl = os.environ.get("MUJOCO_GL", "osmesa")
    child_env = {**os.environ, "MUJOCO_GL": gl, "PYOPENGL_PLATFORM": gl}
    proc = subprocess.run(
        [sys.executable, "-c", _RENDER_SCRIPT], env=child_env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        if "AssertionError" in proc.stderr:
            pytest.fail(proc.stderr[-2000:])
        pytest.skip(
            f"MuJoCo offscreen rendering with MUJOCO_GL={gl} unavailable: "
            f"{proc.stderr.strip().splitlines()[-1:]} (try apt-get install libosmesa6)"
        )
    assert proc.stdout.strip() == "ok"


def test_charge_bot_pushes_at_the_opponent() -> None:
    from envs.sumo.scripted import charge_action

    obs = np.zeros(34, np.float32)
    obs[13:15] = [3.0, -4.0]  # opponent 5 m away
    np.testing.assert_allclose(charge_action(obs), [0.6, -0.8], atol=1e-6)
    assert not np.any(charge_action(np.zeros(34, np.float32)))


@pytest.mark.parametrize("bodies", [("disc", "disc"), ("bug", "bug"), ("ant", "ant")])
def test_both_seats_see_mirrored_states_alike(bodies: tuple[str, str]) -> None:
    """Observations are in each agent's own frame, so a point-mirrored state looks the same
    from either seat: one policy can play both sides."""
    e = SumoEnv(bodies=bodies, shaping_steps=0)
    e.reset(seed=3)
    d = e.data
    rng = np.random.default_rng(0)
    i0, i1 = e._idx
    # Mirror agent_0's state through the centre onto agent_1 (rotate 180 degrees about z).
    d.qpos[i0.root_qpos[:2]] = rng.uniform(-0.8, 0.8, 2)
    d.qvel[i0.lin_vel] = rng.uniform(-1, 1, len(i0.lin_vel))
    d.qpos[i1.root_qpos[:2]] = -d.qpos[i0.root_qpos[:2]]
    flip = np.ones(len(i0.lin_vel))
    flip[:2] = -1.0
    d.qvel[i1.lin_vel] = flip * d.qvel[i0.lin_vel]
    if i0.oriented and not i0.free:  # bug: yaw hinge
        d.qpos[i0.root_qpos[2]] = 0.4
        d.qpos[i1.root_qpos[2]] = 0.4 + np.pi
        d.qvel[i1.ang_vel[2]] = d.qvel[i0.ang_vel[2]] = 0.7
    if i0.free:
        q0 = np.array([np.cos(0.2), 0.0, 0.0, np.sin(0.2)])  # yaw 0.4
        d.qpos[i0.root_qpos[3:7]] = q0
        d.qpos[i1.root_qpos[3:7]] = [-q0[3], 0.0, 0.0, q0[0]]  # yaw 0.4 + pi
        d.qpos[i1.hinge_qpos] = d.qpos[i0.hinge_qpos]
        d.qvel[i1.hinge_qvel] = d.qvel[i0.hinge_qvel]
    mujoco.mj_forward(e.model, d)
    obs = e._observations()
    np.testing.assert_allclose(obs["agent_0"], obs["agent_1"], atol=1e-5)


def test_disc_forward_action_pushes_towards_the_opponent() -> None:
    e = SumoEnv(bodies=("disc", "disc"), shaping_steps=0)
    e.reset(seed=0)
    e.set_torso_xy("agent_0", (0.0, 0.0))
    e.set_torso_xy("agent_1", (0.6, 0.8))  # up and to the right
    before = e.data.xpos[e._idx[0].torso_body, :2].copy()
    for _ in range(5):
        e.step({"agent_0": np.array([1.0, 0.0], np.float32), "agent_1": np.zeros(2, np.float32)})
    moved = e.data.xpos[e._idx[0].torso_body, :2] - before
    np.testing.assert_allclose(moved / np.linalg.norm(moved), [0.6, 0.8], atol=1e-3)


def test_bug_thrusts_along_its_heading_and_turns() -> None:
    e = SumoEnv(bodies=("bug", "bug"), shaping_steps=0)
    e.reset(seed=0)
    i0 = e._idx[0]
    e.data.qpos[i0.root_qpos[2]] = 0.5  # heading 0.5 rad, whatever the opponent's bearing
    mujoco.mj_forward(e.model, e.data)
    e._vec.sync(0)
    before = e.data.qpos[i0.root_qpos[:2]].copy()
    still = np.zeros(2, np.float32)
    for _ in range(5):
        e.step({"agent_0": np.array([1.0, 0.0], np.float32), "agent_1": still})
    moved = e.data.qpos[i0.root_qpos[:2]] - before
    np.testing.assert_allclose(moved / np.linalg.norm(moved), [np.cos(0.5), np.sin(0.5)], atol=1e-2)
    yaw = e.data.qpos[i0.root_qpos[2]]
    for _ in range(20):  # 0.3 s; top turn rate 2.5 rad/s after ~0.1 s
        e.step({"agent_0": np.array([0.0, 1.0], np.float32), "agent_1": still})
    assert e.data.qpos[i0.root_qpos[2]] > yaw + 0.4  # +turn is counter-clockwise


def test_the_ant_is_light_enough_to_walk_and_stands_when_idle() -> None:
    """Gymnasium's ant (Bansal et al.'s body): under 1 kg against 150 N m motors. At
    MuJoCo's default density it weighed 151 kg and random torques barely moved it
    (0.2 m/s mean speed); idle, it must still stand above the fall height."""
    e = SumoEnv(bodies=("ant", "ant"), shaping_steps=0, max_steps=300, seed=0)
    e.reset(seed=0)
    assert e.model.body_subtreemass[e._idx[0].torso_body] < 1.0
    rng = np.random.default_rng(0)
    speeds = []
    idle = np.zeros(8, np.float32)
    while e.agents:
        e.step({"agent_0": rng.uniform(-1, 1, 8).astype(np.float32), "agent_1": idle})
        speeds.append(np.hypot(*e.data.qvel[e._idx[0].lin_vel[:2]]))
        assert e.data.xpos[e._idx[1].torso_body, 2] > 0.45  # the idle ant stands
    assert np.mean(speeds) > 0.4, np.mean(speeds)


def test_still_bot_sends_zero_actions_in_continuous_games_only() -> None:
    from envs.bots import BOTS, Batch, bot_problem
    from envs.pettingzoo_adapter import Game

    game = Game("envs.sumo.sumo_env", "parallel", {"bodies": ["ant", "ant"]})
    assert bot_problem("still", "envs.sumo.sumo_env", game.spec) is None
    game.reset(seed=0)
    agent = game.spec.agents[1]
    obs, _ = game.observe(agent)
    batch = Batch(obs[None], None, np.random.default_rng(0), game.spec, [game], [agent])
    move = BOTS.get("still").act(batch)
    np.testing.assert_array_equal(move, np.zeros((1, 8), np.float32))
    c4 = Game("pettingzoo.classic.connect_four_v3")
    assert "continuous" in bot_problem("still", "pettingzoo.classic.connect_four_v3", c4.spec)
    assert "disc or bug" in bot_problem("charge", "envs.sumo.sumo_env", game.spec)  # ants


def test_charge_bot_steers_a_bug_towards_the_opponent() -> None:
    from envs.sumo.scripted import charge_action

    obs = np.zeros(34, np.float32)
    obs[13:15] = [1.0, 1.0]  # ahead and to the left: full thrust, turn left
    np.testing.assert_allclose(charge_action(obs, "bug"), [1.0, 1.0])
    obs[13:15] = [2.0, -0.1]  # almost straight ahead: a small right turn
    thrust, turn = charge_action(obs, "bug")
    assert thrust == 1.0 and -0.2 < turn < 0.0
    with pytest.raises(ValueError, match="bodies"):
        charge_action(obs, "ant")


def test_push_shaping_pays_for_gaining_on_the_opponent_not_for_drifting_out() -> None:
    from envs.sumo.rules import ShapingWeights, shaping_terms

    w = ShapingWeights(approach=0.0, push=1.0, upright=0.0)
    xy = np.array([[[0.0, -0.3], [0.0, 0.3]]])
    zero = np.zeros((1, 2))
    # Both drift 0.5 m outwards together: nobody gained, no push reward for either.
    drift = shaping_terms(w, xy, xy, np.array([[0.5, 0.8]]), np.array([[1.0, 1.3]]), zero)
    np.testing.assert_allclose(drift["push"], [[0.0, 0.0]], atol=1e-12)
    # agent_0 holds its ground while agent_1 is pushed out 0.4 m: +0.4 / -0.4.
    shove = shaping_terms(w, xy, xy, np.array([[0.5, 0.8]]), np.array([[0.5, 1.2]]), zero)
    np.testing.assert_allclose(shove["push"], [[0.4, -0.4]], atol=1e-12)


def test_drive_shaping_pays_a_push_that_carries_both_out() -> None:
    """An ant pushes by walking into its opponent, so both move outwards and `push` (the
    lead) pays ~0. `drive` pays the opponent's own outward move, but only in contact and
    with the opponent the outer one: two agents drifting out apart, or the pusher going
    first, earn nothing from it."""
    from envs.sumo.rules import ShapingWeights, shaping_terms

    w = ShapingWeights(approach=0.0, push=1.0, upright=0.0, drive=2.0)
    xy = np.array([[[0.0, -0.3], [0.0, 0.3]]])
    zero = np.zeros((1, 2))
    before, after = np.array([[0.5, 0.8]]), np.array([[1.0, 1.3]])  # both 0.5 m further out
    carried = shaping_terms(w, xy, xy, before, after, zero, touching=np.array([True]))
    # agent_0 (behind) is paid 2.0 * 0.5; agent_1 (the outer one) nothing from drive.
    np.testing.assert_allclose(carried["push"], [[1.0, 0.0]], atol=1e-12)
    apart = shaping_terms(w, xy, xy, before, after, zero, touching=np.array([False]))
    np.testing.assert_allclose(apart["push"], [[0.0, 0.0]], atol=1e-12)
    # Off by default: the bug and disc jobs' shaping is unchanged.
    plain = shaping_terms(ShapingWeights(), xy, xy, before, after, zero, np.array([True]))
    np.testing.assert_allclose(plain["push"], [[0.0, 0.0]], atol=1e-12)


def test_approach_shaping_pays_the_agent_that_moved() -> None:
    """A waiting agent earns nothing for its opponent's approach (it did in the first
    design, and bugs learned to wait)."""
    from envs.sumo.rules import ShapingWeights, shaping_terms

    w = ShapingWeights(approach=0.5, push=0.0, upright=0.0)
    before = np.array([[[-1.0, 0.0], [1.0, 0.0]]])
    radii, zero = np.ones((1, 2)), np.zeros((1, 2))
    # agent_0 moves 0.5 m straight at agent_1, which stays: 0.5 * 0.5 for agent_0 only.
    after = np.array([[[-0.5, 0.0], [1.0, 0.0]]])
    terms = shaping_terms(w, before, after, radii, radii, zero)
    np.testing.assert_allclose(terms["approach"], [[0.25, 0.0]], atol=1e-12)
    # Both move 0.5 m towards each other: each is paid for its own half.
    after = np.array([[[-0.5, 0.0], [0.5, 0.0]]])
    terms = shaping_terms(w, before, after, radii, radii, zero)
    np.testing.assert_allclose(terms["approach"], [[0.25, 0.25]], atol=1e-12)
    # agent_1 backs away 0.5 m: it pays for the gap it opened; agent_0 is not charged.
    after = np.array([[[-1.0, 0.0], [1.5, 0.0]]])
    terms = shaping_terms(w, before, after, radii, radii, zero)
    np.testing.assert_allclose(terms["approach"], [[0.0, -0.25]], atol=1e-12)
