"""Dynamics randomisation (envs/randomization, core/dynamics.py): every parameter reaches
the compiled MuJoCo model within its range, per game; draws follow the seed; nominal draws
change nothing; latency, jitter and noise act between the policy and the physics."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from pydantic import ValidationError

from core.dynamics import PARAMETER_NAMES, DynamicsRanges, Randomization, peng_2017
from envs.goal.fetch import goal_env
from envs.randomization import randomized
from envs.sumo.sumo_env import vector_env

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FETCH_RANGES = DynamicsRanges(
    body_mass=(0.25, 4.0),
    joint_damping=(0.2, 20.0),
    actuator_gain=(0.5, 2.0),
    friction=(0.5, 1.5),
    object_mass=(0.5, 2.0),
    object_friction=(0.1, 5.0),
    object_damping=(0.01, 0.2),
    table_height=(-0.02, 0.02),
    gravity=(9.0, 10.5),
    action_latency=(0, 2),
    timestep_jitter=(0.0, 0.1),
    observation_noise=(0.0, 0.01),
)


def _within(value: np.ndarray | float, low: float, high: float) -> bool:
    return bool(np.all((value >= low - 1e-9) & (value <= high + 1e-9)))


def test_every_parameter_reaches_the_fetch_model_within_its_range() -> None:
    plain = goal_env(1, seed=0, task="push")
    plain.reset()
    nominal = plain._envs[0].unwrapped.model
    env = randomized(goal_env(3, seed=0, task="push"), FETCH_RANGES, seed=7)
    assert env.dynamics_names == PARAMETER_NAMES  # every parameter, the table's order
    for _ in range(3):  # three episodes per game
        env.reset()
        for game in range(env.num_envs):
            unwrapped = env.inner._envs[game].unwrapped
            m, d = unwrapped.model, unwrapped.data
            drawn = env.randomizer.values(game)
            assert FETCH_RANGES.contains(drawn)
            links = env.inner.physics_targets(game).bodies
            ratio = m.body_mass[links] / nominal.body_mass[links]
            assert np.allclose(ratio, drawn["body_mass"])
            arm = m.jnt_dofadr[
                mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "robot0:elbow_flex_joint")
            ]
            assert np.isclose(m.dof_damping[arm] / nominal.dof_damping[arm], drawn["joint_damping"])
            gain = (nominal.eq_solref[0, 0] / m.eq_solref[0, 0]) ** 2
            assert np.isclose(gain, drawn["actuator_gain"])
            finger = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "robot0:r_gripper_finger_link")
            assert np.isclose(
                m.geom_friction[finger, 0] / nominal.geom_friction[finger, 0], drawn["friction"]
            )
            obj = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "object0")
            assert np.isclose(m.body_mass[obj] / nominal.body_mass[obj], drawn["object_mass"])
            assert np.isclose(m.geom_friction[m.geom_bodyid == obj, 0][0], drawn["object_friction"])
            assert np.allclose(m.dof_damping[m.dof_bodyid == obj], drawn["object_damping"])
            assert np.isclose(-m.opt.gravity[2], drawn["gravity"])
            table = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "table0")
            shift = m.body_pos[table, 2] - nominal.body_pos[table, 2]
            assert np.isclose(shift, drawn["table_height"])
            # The block starts on the moved table (MjData) and push goals lie on it.
            block_z = d.xpos[obj, 2]
            assert np.isclose(
                block_z, plain._envs[0].unwrapped.data.xpos[obj, 2] + shift, atol=1e-6
            )
            assert np.isclose(unwrapped.goal[2], block_z, atol=1e-6)
            # Heavier bodies feed the solver's constants (mj_setConst ran).
            assert np.isclose(m.body_subtreemass[obj], m.body_mass[obj])
        env.step(np.zeros((3, 4), np.float32))
        for game in range(env.num_envs):
            m = env.inner._envs[game].unwrapped.model
            j = env.randomizer.values(game)["timestep_jitter"]
            assert _within(m.opt.timestep / 0.002, 1 - j, 1 + j)
        for _ in range(49):
            env.step(np.zeros((3, 4), np.float32))
    assert list(env.randomizer.drawn) == [6, 6, 6]  # per round: a reset and an autoreset


def test_sumo_games_draw_their_own_physics_in_the_shared_model() -> None:
    ranges = DynamicsRanges(
        body_mass=(0.5, 2.0),
        joint_damping=(0.5, 2.0),
        actuator_gain=(0.5, 2.0),
        friction=(0.2, 0.8),
    )
    for bodies in (["bug", "bug"], ["ant", "ant"]):
        plain = vector_env(3, seed=0, bodies=bodies).model
        env = randomized(vector_env(3, seed=0, bodies=bodies), ranges, seed=1)
        env.reset()
        m = env.model
        for game in range(3):
            t = env.physics_targets(game)
            drawn = env.randomizer.values(game)
            assert ranges.contains(drawn)
            assert np.allclose(
                m.body_mass[t.bodies] / plain.body_mass[t.bodies], drawn["body_mass"]
            )
            damping = plain.dof_damping[t.dofs] * drawn["joint_damping"]
            assert np.allclose(m.dof_damping[t.dofs], damping) and damping.any()
            gears = m.actuator_gear[t.actuators, 0] / plain.actuator_gear[t.actuators, 0]
            assert np.allclose(gears, drawn["actuator_gain"])
            assert np.allclose(m.geom_friction[t.geoms, 0], drawn["friction"])
            if bodies[0] == "bug":  # the bugs touch through one explicit contact pair
                assert len(t.pairs) == 1
                assert np.allclose(m.pair_friction[t.pairs, :2], drawn["friction"])
            # Game 0's agents own no other game's entries.
            others = [env.physics_targets(g) for g in range(3) if g != game]
            assert not set(t.bodies) & {b for o in others for b in o.bodies}
        masses = [m.body_mass[env.physics_targets(g).bodies[0]] for g in range(3)]
        assert len(set(masses)) == 3  # each game its own draw


def test_the_same_seed_draws_the_same_dynamics_per_game() -> None:
    def draws(seed: int) -> np.ndarray:
        env = randomized(
            vector_env(2, seed=0, bodies=["bug", "bug"]),
            DynamicsRanges(body_mass=(0.5, 2.0), action_latency=(0, 3)),
            seed=seed,
        )
        env.reset()
        rows = [env.dynamics]
        rng = np.random.default_rng(0)
        for _ in range(1200):  # several episodes per game
            env.step(rng.uniform(-1, 1, (2, 2, env.act_dim)))
            rows.append(env.dynamics)
        assert env.randomizer.drawn.min() >= 2
        return np.stack(rows)

    a, b, c = draws(5), draws(5), draws(6)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert set(np.unique(a[..., 1])) <= {0.0, 1.0, 2.0, 3.0}  # latency: whole steps


def test_nominal_draws_leave_the_physics_bit_identical() -> None:
    """A draw of every parameter at its nominal value must play exactly like the plain env:
    the wrapper changes nothing it was not asked to."""
    nominal = DynamicsRanges(body_mass=1.0, joint_damping=1.0, actuator_gain=1.0, friction=1.0)
    for bodies in (["ant", "ant"], ["bug", "bug"]):
        plain, wrapped = (
            vector_env(2, seed=0, bodies=bodies),
            randomized(vector_env(2, seed=0, bodies=bodies), nominal, seed=1),
        )
        assert np.array_equal(plain.reset(), wrapped.reset())
        rng = np.random.default_rng(0)
        for _ in range(200):
            actions = rng.uniform(-1, 1, (2, 2, plain.act_dim))
            for x, y in zip(plain.step(actions), wrapped.step(actions), strict=True):
                assert np.array_equal(x, y)
    fetch_nominal = DynamicsRanges(
        body_mass=1.0, object_mass=1.0, table_height=0.0, actuator_gain=1.0
    )
    plain, wrapped = goal_env(1, seed=0), randomized(goal_env(1, seed=0), fetch_nominal, seed=1)
    assert np.array_equal(plain.reset().observation, wrapped.reset().observation)
    rng = np.random.default_rng(0)
    for _ in range(60):
        actions = rng.uniform(-1, 1, (1, 4)).astype(np.float32)
        assert np.array_equal(
            plain.step(actions)[0].observation, wrapped.step(actions)[0].observation
        )


def test_latency_applies_each_action_that_many_steps_late() -> None:
    """A hand-made sequence: with latency 2 the physics gets 0, 0, a1, a2, ... and a new
    episode starts with an empty queue."""
    env = randomized(goal_env(1, seed=0, task="reach"), DynamicsRanges(action_latency=2), seed=0)
    seen: list[np.ndarray] = []
    inner_step = env.inner.step
    env.inner.step = lambda a: seen.append(np.array(a)) or inner_step(a)
    env.reset()
    sequence = [np.full((1, 4), v, np.float32) for v in (0.1, 0.2, 0.3, 0.4)]
    for a in sequence:
        env.step(a)
    applied = [float(s[0, 0]) for s in seen]
    assert np.allclose(applied, [0.0, 0.0, 0.1, 0.2])
    for _ in range(46):  # to the time limit: the autoreset empties the queue
        env.step(np.full((1, 4), 0.9, np.float32))
    env.step(np.full((1, 4), 0.5, np.float32))
    assert float(seen[-1][0, 0]) == 0.0


def test_observation_noise_touches_the_observation_but_not_goals_or_rewards() -> None:
    plain = goal_env(1, seed=0)
    noisy = randomized(goal_env(1, seed=0), DynamicsRanges(observation_noise=0.01), seed=0)
    p, n = plain.reset(), noisy.reset()
    assert np.array_equal(p.achieved_goal, n.achieved_goal)
    assert np.array_equal(p.desired_goal, n.desired_goal)
    gaps = [n.observation - p.observation]
    for _ in range(30):
        a = np.zeros((1, 4), np.float32)
        (p, rp, *_), (n, rn, *_) = plain.step(a), noisy.step(a)
        assert np.array_equal(rp, rn) and np.array_equal(p.achieved_goal, n.achieved_goal)
        gaps.append(n.observation - p.observation)
    assert 0.007 < float(np.std(np.concatenate(gaps))) < 0.013


def test_ranges_are_validated_and_envs_refuse_what_they_cannot_change() -> None:
    with pytest.raises(ValidationError, match="body_mass"):
        DynamicsRanges(body_mass=(-1.0, 2.0))
    with pytest.raises(ValidationError, match="above high"):
        DynamicsRanges(friction=(2.0, 1.0))
    with pytest.raises(ValidationError, match="action_latency"):
        DynamicsRanges(action_latency=(0, 1.5))
    with pytest.raises(ValidationError, match="extra"):
        DynamicsRanges(wind=(0.0, 1.0))
    with pytest.raises(ValidationError, match="set name"):
        Randomization(heldout={"bad name!": DynamicsRanges()})
    assert Randomization().train == peng_2017()  # Peng et al.'s ranges by default
    with pytest.raises(ValueError, match="cannot randomise gravity, timestep_jitter"):
        randomized(
            vector_env(1, seed=0, bodies=["bug", "bug"]),
            DynamicsRanges(gravity=9.0, timestep_jitter=0.1),
        )
    with pytest.raises(ValueError, match="cannot randomise object_mass"):
        randomized(goal_env(1, seed=0, task="reach"), DynamicsRanges(object_mass=(0.5, 2.0)))
    env = randomized(goal_env(1, seed=0), peng_2017(), seed=0)
    env.reset()
    with pytest.raises(ValueError, match="actions must have shape"):
        env.step(np.zeros((2, 4), np.float32))
