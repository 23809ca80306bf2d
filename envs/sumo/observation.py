"""Per-agent index tables into MjData, and the observations of many games built from them.

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

Values are what MjData holds after the control step's last mj_step and
mj_rnePostConstraint: torso poses (xpos, xquat, read through sensors) and contacts come from
that substep's forward pass, joint positions and velocities (qpos, qvel) are the integrated
ones. `BatchObserver` computes all of it for many games at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import mujoco
import numpy as np

from envs.sumo.model import BUG_YAW_JOINT, TOUCH_SENSOR, agent_prefix

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


class Geometry(NamedTuple):
    """What the rules and the observation need to know about n games' torsos."""

    radial: np.ndarray  # (n, 2) distance from the ring centre
    gap: np.ndarray  # (n,) distance between the two torsos (xy)
    height: np.ndarray  # (n, 2) torso z
    up_z: np.ndarray  # (n, 2) z component of the torso's up axis
    touching: np.ndarray  # (n,) bool: the agents' subtrees are in contact
    # (n, 2) cosine and sine of the heading of each agent's own frame (module docstring);
    # the observation and the disc forces and bug thrust turn vectors with them
    cos_yaw: np.ndarray
    sin_yaw: np.ndarray


class BatchObserver:
    """Geometry and observations of n games at once, as a few numpy calls on all games.

    Input is one *state row* per game, the concatenation of that game's blocks of what
    SumoVector reads from MjData after a step: [sensordata (torso xy relative to the game's
    ring centre) | qpos (only if an agent has hinges) | qvel | cfrc_ext of its bodies | 0.0];
    the trailing zero stands in for quantities a body lacks (a disc's
    vertical and angular velocity) and pads the smaller body's rows. Everything here is
    precomputed column indices into those rows plus elementwise arithmetic, so a step costs
    the same few dozen numpy calls for 1 or 1000 games. The arrays put the game axis last
    (numpy's inner loops then run over games, not over 2- to 4-long vectors).

    The arithmetic repeats the per-agent formulas operation for operation (same operands,
    same order, up to commutation, which is exact in IEEE arithmetic), so the values are
    bit-identical to computing one agent at a time; comments say where an expression was
    rearranged.
    """

    def __init__(
        self, model: mujoco.MjModel, idx: tuple[AgentIndex, AgentIndex], num_games: int = 1
    ) -> None:
        """`model` holds `num_games` games (envs/sumo/model.py); `idx` indexes game 0, whose
        block of each MjData array is the layout of every game's row."""
        self.idx = idx
        self.obs_sizes = (idx[0].obs_size, idx[1].obs_size)
        self.obs_dim = max(self.obs_sizes)
        self._oriented = np.array([i.oriented for i in idx])
        self._any_oriented = bool(self._oriented.any())
        self._all_oriented = bool(self._oriented.all())

        def sensor(name: str, size: int) -> np.ndarray:
            adr = model.sensor_adr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, name)]
            return np.arange(adr, adr + size)

        # State row layout; cfrc_ext rows of the game's bodies only (not the world body 0).
        need_qpos = any(len(i.hinge_qpos) for i in idx)
        q0 = model.nsensordata // num_games
        v0 = q0 + (model.nq // num_games if need_qpos else 0)
        c0 = v0 + model.nv // num_games
        zero = c0 + 6 * ((model.nbody - 1) // num_games)
        self.sensor_cols = slice(0, q0)
        self.qpos_cols = slice(q0, v0) if need_qpos else None
        self.qvel_cols = slice(v0, c0)
        self.cfrc_cols = slice(c0, zero)
        self.width = zero + 1

        prefixes = (agent_prefix(0), agent_prefix(1))
        self._pos = np.stack([sensor(p + "torso_pos", 3) for p in prefixes])
        self._quat = np.stack([sensor(p + "torso_quat", 4) for p in prefixes])
        self._up = np.array([sensor(p + "torso_zaxis", 3)[2] for p in prefixes])
        self.touch_col = int(sensor(TOUCH_SENSOR, 1)[0])
        # Torso x and y of both agents: world positions, from which the env subtracts the
        # game's ring centre.
        self.xy_cols = self._pos[:, :2].ravel()

        def pad(dofs: np.ndarray, size: int) -> list[int]:
            cols = [zero if k < 0 else v0 + int(k) for k in dofs]  # -1: a component it lacks
            return cols + [zero] * (size - len(cols))

        vel = np.array([pad(i.lin_vel, 3) for i in idx])
        ang = [pad(i.ang_vel, 3) for i in idx]
        nrows = 4 + 2 * max(len(i.bodies) for i in idx)
        # 3-vectors to turn into the own frame, indexed (component, seat, row): position,
        # velocity, opponent position minus own (a - b), opponent velocity minus own, then
        # per own body the contact torque and force (zero rows pad the smaller body).
        a = np.full((2, nrows, 3), zero)
        b = np.full((2, 2, 3), zero)
        for s, me in enumerate(idx):
            o = 1 - s
            a[s, 0], a[s, 1] = self._pos[s], vel[s]
            a[s, 2], b[s, 0] = self._pos[o], self._pos[s]
            a[s, 3], b[s, 1] = vel[o], vel[s]
            wrench = (c0 + 6 * (np.asarray(me.bodies)[:, None] - 1) + np.arange(6)).reshape(-1, 3)
            a[s, 4 : 4 + len(wrench)] = wrench
        self._a, self._b = a.transpose(2, 0, 1), b.transpose(2, 0, 1)
        self._pair = np.array([[0, 1], [1, 0]])  # (seat, own / opponent) -> agent

        # Where each observation entry comes from in the matrix `build` assembles, rows:
        # [turned vectors | clipped contact scale of the wrench rows | frame quaternions |
        # 5 scalars | the state columns copied as they are (`_raw`)].
        nwrench = nrows - 4
        f_con = 6 * nrows
        f_quat = f_con + 6 * nwrench
        f_scal = f_quat + 16
        f_raw = f_scal + 5
        raw: list[int] = []  # state columns, in order of first use

        def copied(col: int) -> int:
            if col not in raw:
                raw.append(col)
            return f_raw + raw.index(col)

        def vec(s: int, r: int) -> list[int]:
            return [(k * 2 + s) * nrows + r for k in range(3)]

        def contact(s: int, r: int) -> list[int]:
            return [f_con + (k * 2 + s) * nwrench + r for k in range(3)]

        def quat(s: int, which: int) -> list[int]:
            return [f_quat + (k * 2 + s) * 2 + which for k in range(4)]

        take: list[int] = []
        for s, me in enumerate(idx):
            cols = vec(s, 0) + quat(s, 0) + vec(s, 1) + [copied(c) for c in ang[s]]
            cols += [copied(q0 + int(k)) for k in me.hinge_qpos]
            cols += [copied(v0 + int(k)) for k in me.hinge_qvel]
            cols += vec(s, 2) + vec(s, 3) + quat(s, 1)
            cols += [f_scal + s, f_scal + 1 - s, f_scal + 2]  # own edge, opponent's, radius
            for r in range(2 * len(me.bodies)):
                cols += contact(s, r)
            cols += [f_scal + 3, f_scal + 4]  # touching, time left
            if len(cols) != me.obs_size:
                raise AssertionError("observation layout out of step with AgentIndex.obs_size")
            take += cols + [copied(zero)] * (self.obs_dim - len(cols))
        self._take = np.array(take)
        self._raw = np.array(raw)

    @staticmethod
    def columns(state: np.ndarray) -> np.ndarray:
        """State rows (n, width) -> the (width, n) layout `geometry` and `build` take: the
        game axis last and contiguous, so every column pick below is a contiguous copy."""
        return np.ascontiguousarray(state.T)

    def geometry(self, cols: np.ndarray) -> Geometry:
        """Torso geometry and headings of n games from their state `columns` (width, n)."""
        x, y, z = cols[self._pos.T]  # each (agent, game)
        radial = np.hypot(x, y)
        gap = np.hypot(x[0] - x[1], y[0] - y[1])
        # Headings: a disc faces the opponent; an oriented body's (ant, bug) yaw is
        # atan2(2 (w z + x y), 1 - 2 (y^2 + z^2)).
        ys, xs = y[::-1] - y, x[::-1] - x  # opponent minus own
        if self._any_oriented:
            qw, qx, qy, qz = cols[self._quat.T]
            oriented = self._oriented[:, None]
            ys = np.where(oriented, 2.0 * (qw * qz + qx * qy), ys)
            xs = np.where(oriented, 1.0 - 2.0 * (qy * qy + qz * qz), xs)
        # cos and sin of the heading by normalising (xs, ys), not through an angle: only
        # +, -, *, / and sqrt, which IEEE rounds the same on every CPU (numpy's SIMD
        # arctan2/sin/cos differ from libm in the last bit for some inputs, and these
        # values turn the disc forces, so such bits would reach the physics), and no
        # Python-level call per game. A zero vector (coincident discs) faces +x.
        r = np.hypot(xs, ys)
        flat = r == 0.0
        r[flat] = 1.0
        cos_yaw = xs / r
        cos_yaw[flat] = 1.0
        sin_yaw = ys / r
        up, touching = cols[self._up].T, cols[self.touch_col] > 0.0
        return Geometry(radial.T, gap, z.T, up, touching, cos_yaw.T, sin_yaw.T)

    def build(
        self,
        cols: np.ndarray,
        geo: Geometry,
        radius: np.ndarray,
        touching: np.ndarray,
        time_left: np.ndarray,
    ) -> np.ndarray:
        """(n, 2, obs_dim) float32 observations of both seats of n games.

        `cols` (width, n) are the state `columns` and `geo` their `geometry`, `radius` (n,)
        the ring radii, `touching` (n,) the flag to report, `time_left` (n,) the fraction of the
        time limit left. A seat whose observation is shorter than `obs_dim` (mixed bodies) is
        zero-padded at the end.
        """
        n = cols.shape[1]
        vecs = cols[self._a]  # (xyz, seat, row, game)
        vecs[:, :, 2:4] -= cols[self._b]  # the two "opponent minus own" rows
        # Into the own frame: (x, y) -> (c x + s y, -s x + c y).
        c, s = geo.cos_yaw.T[:, None], geo.sin_yaw.T[:, None]
        x, y = vecs[0], vecs[1]
        turned_x = c * x + s * y
        vecs[1] = -s * x + c * y
        vecs[0] = turned_x
        wrench = vecs[:, :, 4:] / CONTACT_SCALE
        contact = np.minimum(np.maximum(wrench, -1.0), 1.0, out=wrench)  # = np.clip

        # Frame quaternions: own and opponent orientation turned by -yaw of the seat's frame.
        # A disc's world orientation is its heading about z.
        # Half-angle cosine and sine from the heading's: cos(a/2) = sqrt((1 + cos a) / 2),
        # sin(a/2) = sqrt((1 - cos a) / 2) with the sign of sin a (a in (-pi, pi]).
        c2 = geo.cos_yaw.T  # (seat, game)
        hc = np.sqrt(np.maximum(0.5 + 0.5 * c2, 0.0))
        hs = np.copysign(np.sqrt(np.maximum(0.5 - 0.5 * c2, 0.0)), geo.sin_yaw.T)
        world = cols[self._quat.T]  # (wxyz, agent, game)
        if not self._all_oriented:
            disc = np.zeros((4, 2, n))
            disc[0], disc[3] = hc, hs
            world = np.where(self._oriented[:, None], world, disc) if self._any_oriented else disc
        q = world[:, self._pair]  # (wxyz, seat, own / opponent, game)
        # yaw(-yaw) * q with c = cos(yaw / 2), s = -sin(yaw / 2):
        # (c w - s z, c x - s y, c y + s x, c z + s w) = c q + (s (-1, -1, 1, 1)) (z, y, x, w);
        # (s * -1) * z = -(s z) exactly.
        c, s = hc[:, None], -hs[:, None]
        q = c * q + (_QUAT_SIGNS * s) * q[::-1]
        # q and -q are the same rotation: pick one sign so equal states give equal
        # observations (a half turn, w == 0 up to rounding, as for a disc opponent, is
        # decided by z): flip when w < -1e-9, or |w| <= 1e-9 and z < 0.
        key = np.where(np.abs(q[0]) <= 1e-9, q[3], q[0])
        q *= np.where(key < 0.0, -1.0, 1.0)

        scalars = np.empty((5, n))
        np.subtract(radius, geo.radial.T, out=scalars[:2])  # distance to the edge, per agent
        scalars[2], scalars[3], scalars[4] = radius, touching, time_left
        raw = cols[self._raw]
        parts = (vecs.reshape(-1, n), contact.reshape(-1, n), q.reshape(-1, n), scalars, raw)
        # Gather through the transposed view: numpy then writes (game, entry) in order, ~5x
        # faster than gathering (entry, game) and transposing.
        out = np.concatenate(parts).T[:, self._take].astype(np.float32)
        return out.reshape(n, 2, self.obs_dim)


# Per quaternion component (w, x, y, z), broadcast over (seat, own / opponent, game).
_QUAT_SIGNS = np.array([-1.0, -1.0, 1.0, 1.0])[:, None, None, None]


def bug_thrust_to_world(
    a: np.ndarray, cos: np.ndarray, sin: np.ndarray, bug_seats: Sequence[int]
) -> np.ndarray:
    """(N, 2, width) actuator inputs from (N, 2, act_dim) actions: a bug seat's (thrust,
    turn) becomes (thrust cos, thrust sin, turn) for its (force x, force y, turn) motors,
    along the heading it last observed (`cos`, `sin`: (N, 2)); other seats are copied."""
    width = max(a.shape[2], 3)
    out = np.zeros((a.shape[0], 2, width), np.result_type(a.dtype, 1.0))
    out[:, :, : a.shape[2]] = a
    for k in bug_seats:
        thrust = a[:, k, 0]
        out[:, k, 0] = thrust * cos[:, k]
        out[:, k, 1] = thrust * sin[:, k]
        out[:, k, 2] = a[:, k, 1]
    return out


def disc_forces_to_world(
    a: np.ndarray, cos: np.ndarray, sin: np.ndarray, disc_seats: Sequence[int]
) -> np.ndarray:
    """(N, 2, act_dim) actions with the disc seats' (x, y) forces turned from the agent's
    frame to the world by the heading it last observed (`cos`, `sin`: (N, 2))."""
    # (x, y) -> (c x - s y, s x + c y), written as c (x, y) + (-s, s) (y, x) (same products;
    # (-s) y = -(s y) exactly). The arithmetic runs in the actions' precision (numpy's
    # promotion: float32 actions give float32 forces), as the one-game env always did.
    dtype = np.result_type(a.dtype, 1.0)
    c = cos.astype(dtype)[:, :, None]
    s = sin.astype(dtype)[:, :, None]
    u = a[:, :, :2]
    turned = c * u + np.concatenate((-s, s), axis=2) * u[:, :, ::-1]
    if len(disc_seats) == 2 and a.shape[2] == 2:
        return turned
    out = a.astype(turned.dtype)  # a copy, also when the type stays
    for k in disc_seats:
        out[:, k, :2] = turned[:, k]
    return out
