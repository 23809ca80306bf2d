"""Per-agent index tables into MjData and the observation vector built from them.

Observation layout for one agent (float32; world frame unless noted; n = own hinge joints,
b = own bodies; disc n=0 b=1, ant n=8 b=9):

    [0:2]    own torso xy (relative to the ring centre, which is the world origin)
    [2]      own torso height z
    [3:7]    own torso orientation quaternion (w, x, y, z)
    [7:10]   own torso linear velocity
    [10:13]  own torso angular velocity (body frame; zeros for the disc)
    [13:13+n]        own hinge joint positions
    [13+n:13+2n]     own hinge joint velocities
    then 10: opponent torso position minus own (3), velocity minus own (3), quaternion (4)
    then 3:  own distance to the ring edge, opponent distance to the edge (negative = out),
             ring radius
    then 6b+1: own bodies' external contact wrenches (cfrc_ext / CONTACT_SCALE, clipped to
               [-1, 1]), then 1.0 if the agents touch at the end of this step else 0.0
    then 1:  fraction of the time limit left

Size = 13 + 2n + 10 + 3 + 6b + 1 + 1: disc 34, ant 98.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

CONTACT_SCALE = 500.0  # N; a body's weight-scale force maps to ~1 before clipping


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
    free: bool  # torso has a free joint (ant) rather than planar slides (disc)

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
    if free:
        qa, va = model.jnt_qposadr[free[0]], model.jnt_dofadr[free[0]]
        root_qpos, lin_vel = np.arange(qa, qa + 7), np.arange(va, va + 3)
        ang_vel = np.arange(va + 3, va + 6)
    else:
        root_qpos = np.array([model.jnt_qposadr[j] for j in slides])
        lin_vel = np.array([model.jnt_dofadr[j] for j in slides])
        ang_vel = np.zeros(0, dtype=int)
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
        free=bool(free),
    )


def torso_velocity(data: mujoco.MjData, idx: AgentIndex) -> np.ndarray:
    vel = np.zeros(3)
    vel[: len(idx.lin_vel)] = data.qvel[idx.lin_vel]
    return vel


def build_obs(
    data: mujoco.MjData,
    me: AgentIndex,
    opp: AgentIndex,
    radius: float,
    touching: bool,
    time_left: float,
) -> np.ndarray:
    pos, opp_pos = data.xpos[me.torso_body], data.xpos[opp.torso_body]
    vel, opp_vel = torso_velocity(data, me), torso_velocity(data, opp)
    ang = np.zeros(3)
    ang[: len(me.ang_vel)] = data.qvel[me.ang_vel]
    own_edge = radius - np.hypot(pos[0], pos[1])
    opp_edge = radius - np.hypot(opp_pos[0], opp_pos[1])
    contact = np.clip(data.cfrc_ext[me.bodies].ravel() / CONTACT_SCALE, -1.0, 1.0)
    return np.concatenate(
        (
            pos,
            data.xquat[me.torso_body],
            vel,
            ang,
            data.qpos[me.hinge_qpos],
            data.qvel[me.hinge_qvel],
            opp_pos - pos,
            opp_vel - vel,
            data.xquat[opp.torso_body],
            (own_edge, opp_edge, radius, *contact, float(touching), time_left),
        )
    ).astype(np.float32)
