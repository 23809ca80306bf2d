"""Per-agent index tables into MjData and the observation vector built from them.

Everything is expressed in the agent's own *frame*: the world rotated about the vertical
axis so that +x is the agent's heading. An ant's heading is its torso's yaw; a disc has no
orientation, so its heading is the direction to the opponent (and its actions are forces in
that frame, see SumoEnv.step). Both seats therefore see the same picture of the same
situation, which lets one policy play either side.

Observation layout for one agent (float32; n = own hinge joints, b = own bodies; disc n=0
b=1, ant n=8 b=9):

    [0:2]    own torso xy relative to the ring centre (the world origin), in the own frame
    [2]      own torso height z
    [3:7]    own torso orientation quaternion (w, x, y, z) relative to the own frame (an ant's
             tilt; always identity for the disc)
    [7:10]   own torso linear velocity
    [10:13]  own torso angular velocity (body frame; zeros for the disc)
    [13:13+n]        own hinge joint positions
    [13+n:13+2n]     own hinge joint velocities
    then 10: opponent torso position minus own (3), velocity minus own (3), orientation (4)
             (disc: its heading is towards us, i.e. a half turn in our frame)
    then 3:  own distance to the ring edge, opponent distance to the edge (negative = out),
             ring radius
    then 6b+1: own bodies' external contact wrenches (cfrc_ext / CONTACT_SCALE, clipped to
               [-1, 1], torque then force, rotated into the own frame), then 1.0 if the
               agents touch at the end of this step else 0.0
    then 1:  fraction of the time limit left

Size = 13 + 2n + 10 + 3 + 6b + 1 + 1: disc 34, ant 98.
"""

from __future__ import annotations

import math
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


def heading(data: mujoco.MjData, me: AgentIndex, opp: AgentIndex) -> float:
    """Yaw (radians, world frame) of the agent's own frame; see the module docstring."""
    if me.free:
        w, x, y, z = data.xquat[me.torso_body]
        return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    rel = data.xpos[opp.torso_body] - data.xpos[me.torso_body]
    return math.atan2(rel[1], rel[0])


def _world_quat(data: mujoco.MjData, me: AgentIndex, opp: AgentIndex) -> np.ndarray:
    if me.free:
        return data.xquat[me.torso_body]
    half = 0.5 * heading(data, me, opp)
    return np.array((math.cos(half), 0.0, 0.0, math.sin(half)))


def _unyaw(quat: np.ndarray, yaw: float) -> np.ndarray:
    """The quaternion yaw(-yaw) * quat: an orientation re-expressed in a frame turned by yaw."""
    c, s = math.cos(0.5 * yaw), -math.sin(0.5 * yaw)
    w, x, y, z = quat
    q = np.array((c * w - s * z, c * x - s * y, c * y + s * x, c * z + s * w))
    # q and -q are the same rotation: pick one sign so equal states give equal observations
    # (a half turn, w == 0 up to rounding, as for a disc opponent, is decided by z).
    if q[0] < -1e-9 or (abs(q[0]) <= 1e-9 and q[3] < 0.0):
        q = -q
    return q


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
    yaw = heading(data, me, opp)
    c, s = math.cos(yaw), math.sin(yaw)
    # Rows are 3-vectors whose xy parts turn into the own frame: (x, y) -> R(-yaw) (x, y).
    vectors = np.stack((pos, vel, opp_pos - pos, opp_vel - vel))
    wrench = data.cfrc_ext[me.bodies].reshape(-1, 3)  # per body: torque, force
    for v in (vectors, wrench):
        x = v[:, 0].copy()
        v[:, 0] = c * x + s * v[:, 1]
        v[:, 1] = -s * x + c * v[:, 1]
    contact = np.clip(wrench.ravel() / CONTACT_SCALE, -1.0, 1.0)
    return np.concatenate(
        (
            vectors[0],
            _unyaw(_world_quat(data, me, opp), yaw),
            vectors[1],
            ang,
            data.qpos[me.hinge_qpos],
            data.qvel[me.hinge_qvel],
            vectors[2],
            vectors[3],
            _unyaw(_world_quat(data, opp, me), yaw),
            (own_edge, opp_edge, radius, *contact, float(touching), time_left),
        )
    ).astype(np.float32)
