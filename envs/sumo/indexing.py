"""Where each agent's state and actuators live in a sumo MjModel's arrays (AgentIndex),
found by the name prefixes envs/sumo/model.py gives every agent's joints, bodies and
motors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from envs.sumo.model import BUG_YAW_JOINT, agent_prefix, game_prefix


@dataclass(frozen=True)
class AgentIndex:
    """Where one agent's state and actuators live in MjModel/MjData arrays."""

    torso_body: int
    root_qpos: np.ndarray  # qpos indices holding torso x, y (and z, quat for a free joint)
    lin_vel: np.ndarray  # qvel indices of torso linear velocity (2 for disc, 3 for ant)
    ang_vel: np.ndarray  # qvel indices of torso angular velocity (empty for disc)
    hinge_qpos: np.ndarray
    hinge_qvel: np.ndarray
    hinge_nominal: np.ndarray  # mid-range reset pose for the hinges
    bodies: np.ndarray
    actuators: slice
    num_actions: int  # action entries: one per actuator, but a bug's thrust drives two
    free: bool  # torso has a free joint (ant) rather than planar slides (disc, bug)
    oriented: bool  # the torso's own yaw is its heading (ant, bug); a disc faces the opponent

    @property
    def obs_size(self) -> int:
        n, b = len(self.hinge_qpos), len(self.bodies)
        return 13 + 2 * n + 10 + 3 + 6 * b + 1 + 1


def index_agent(model: mujoco.MjModel, prefix: str) -> AgentIndex:
    def named(obj: mujoco.mjtObj, count: int) -> list[int]:
        return [i for i in range(count) if mujoco.mj_id2name(model, obj, i).startswith(prefix)]

    joints = named(mujoco.mjtObj.mjOBJ_JOINT, model.njnt)
    bodies = named(mujoco.mjtObj.mjOBJ_BODY, model.nbody)
    acts = named(mujoco.mjtObj.mjOBJ_ACTUATOR, model.nu)
    free = [j for j in joints if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
    slides = [j for j in joints if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_SLIDE]
    hinges = [j for j in joints if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    yaw = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, prefix + BUG_YAW_JOINT)
    hinges = [j for j in hinges if j != yaw]  # a root joint, not a limb: its angle is the heading
    if free:
        qa, va = model.jnt_qposadr[free[0]], model.jnt_dofadr[free[0]]
        root_qpos, lin_vel = np.arange(qa, qa + 7), np.arange(va, va + 3)
        ang_vel = np.arange(va + 3, va + 6)
    else:
        root_qpos = np.array([model.jnt_qposadr[j] for j in slides])
        lin_vel = np.array([model.jnt_dofadr[j] for j in slides])
        ang_vel = np.zeros(0, dtype=int)
        if yaw >= 0:  # x, y, yaw; angular velocity about z only (-1: always zero)
            root_qpos = np.append(root_qpos, model.jnt_qposadr[yaw])
            ang_vel = np.array([-1, -1, model.jnt_dofadr[yaw]])
    limited = model.jnt_limited[hinges].astype(bool) if hinges else np.zeros(0, bool)
    mid = model.jnt_range[hinges].mean(axis=1) if hinges else np.zeros(0)
    return AgentIndex(
        torso_body=mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, prefix + "torso"),
        root_qpos=root_qpos,
        lin_vel=lin_vel,
        ang_vel=ang_vel,
        hinge_qpos=np.array([model.jnt_qposadr[j] for j in hinges], dtype=int),
        hinge_qvel=np.array([model.jnt_dofadr[j] for j in hinges], dtype=int),
        hinge_nominal=np.where(limited, mid, 0.0),
        bodies=np.array(bodies, dtype=int),
        actuators=slice(min(acts), max(acts) + 1),  # prefixes keep each agent's motors together
        num_actions=len(acts) - (yaw >= 0),  # bug: (thrust, turn) drive (force x, y, turn)
        free=bool(free),
        oriented=bool(free) or yaw >= 0,
    )


def check_game_blocks(model: mujoco.MjModel, num_games: int, idx: Sequence[AgentIndex]) -> None:
    """Every MjData array must hold the games as equal blocks in game order (model.py): the
    (N, per game) views of SumoVector rely on it. Checked on game 1 against game 0, whose
    agents `idx` indexes."""
    m, n = model, num_games
    sizes = (m.nq, m.nv, m.nu, m.nbody - 1, m.nsensordata)
    if any(size % n for size in sizes):
        raise AssertionError(f"model arrays {sizes} do not split into {n} games")
    if n == 1:
        return
    nq, nv, nb = m.nq // n, m.nv // n, (m.nbody - 1) // n
    for k, game0 in enumerate(idx):
        game1 = index_agent(m, game_prefix(1) + agent_prefix(k))
        if not (
            game1.torso_body == game0.torso_body + nb
            and np.array_equal(game1.root_qpos, game0.root_qpos + nq)
            and np.array_equal(game1.hinge_qvel, game0.hinge_qvel + nv)
            and game1.actuators.start == game0.actuators.start + m.nu // n
        ):
            raise AssertionError("game 1's block does not repeat game 0's layout")
