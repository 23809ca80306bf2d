"""The observations of many sumo games, built from MjData through the per-agent index
tables of envs/sumo/indexing.py.

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
    then 6b+1: own bodies' external contact wrenches (cfrc_ext divided by the own body's
               BodySpec.contact_scale, about its weight in N, clipped to [-1, 1], torque
               then force, rotated into the own frame), then 1.0 if the
               agents touch at the end of this step else 0.0
    then 1:  fraction of the time limit left

Size = 13 + 2n + 10 + 3 + 6b + 1 + 1: disc 34, ant 98.

Values are what MjData holds after the control step's last mj_step and
mj_rnePostConstraint: torso poses (xpos, xquat, read through sensors) and contacts come from
that substep's forward pass, joint positions and velocities (qpos, qvel) are the integrated
ones. `BatchObserver` computes all of it for many games at once.
"""

from __future__ import annotations

from typing import NamedTuple

import mujoco
import numba
import numpy as np

from envs.sumo.indexing import AgentIndex
from envs.sumo.model import TOUCH_SENSOR, agent_prefix


class Geometry(NamedTuple):
    """What the rules and the observation need to know about n games' torsos."""

    radial: np.ndarray  # (n, 2) distance from the ring centre
    xy: np.ndarray  # (n, 2, 2) each agent's torso (x, y) relative to the ring centre
    height: np.ndarray  # (n, 2) torso z
    up_z: np.ndarray  # (n, 2) z component of the torso's up axis
    touching: np.ndarray  # (n,) bool: the agents' subtrees are in contact
    # (n, 2) cosine and sine of the heading of each agent's own frame (module docstring);
    # the observation and the disc forces and bug thrust turn vectors with them
    cos_yaw: np.ndarray
    sin_yaw: np.ndarray


class BatchObserver:
    """Geometry and observations of many games, read straight from MjData by one compiled
    loop over the games (`_observe_games`, numba).

    Why compiled: the rest of a control step is small arithmetic on ~50 numbers per game,
    and as numpy calls over all games it cost ~0.7 us per game in ~100 passes over
    temporaries, half the physics of a cheap body (BENCHMARKS.md, "Sumo env speed"). One
    loop reads each game's MjData rows once and writes its observation row.

    Per game the loop first copies a *state row*, the concatenation of that game's blocks
    of [sensordata (torso xy made relative to the game's ring centre) | qpos (only if an
    agent has hinges) | qvel | cfrc_ext of its bodies | 0.0]; the trailing zero stands in
    for quantities a body lacks (a disc's vertical and angular velocity) and pads the
    smaller body's rows. Everything else is tables built here once: column indices into
    that row, and `take`, where each observation entry comes from in the per-game vector
    of derived values (turned vectors, clipped contacts, frame quaternions, scalars, raw
    state columns).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        idx: tuple[AgentIndex, AgentIndex],
        num_games: int,
        contact_scale: tuple[float, float],
    ) -> None:
        """`model` holds `num_games` games (envs/sumo/model.py); `idx` indexes game 0, whose
        block of each MjData array is the layout of every game's row. `contact_scale`: each
        seat's BodySpec.contact_scale (N), what its contact wrenches are divided by."""
        self.idx = idx
        self.obs_sizes = (idx[0].obs_size, idx[1].obs_size)
        self.obs_dim = max(self.obs_sizes)

        def sensor(name: str, size: int) -> np.ndarray:
            adr = model.sensor_adr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, name)]
            return np.arange(adr, adr + size)

        # State row layout; cfrc_ext rows of the game's bodies only (not the world body 0).
        need_qpos = any(len(i.hinge_qpos) for i in idx)
        q0 = model.nsensordata // num_games
        v0 = q0 + (model.nq // num_games if need_qpos else 0)
        c0 = v0 + model.nv // num_games
        zero = c0 + 6 * ((model.nbody - 1) // num_games)

        prefixes = (agent_prefix(0), agent_prefix(1))
        pos = np.stack([sensor(p + "torso_pos", 3) for p in prefixes])
        quat = np.stack([sensor(p + "torso_quat", 4) for p in prefixes])
        up = np.array([sensor(p + "torso_zaxis", 3)[2] for p in prefixes])
        touch_col = int(sensor(TOUCH_SENSOR, 1)[0])

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
            a[s, 0], a[s, 1] = pos[s], vel[s]
            a[s, 2], b[s, 0] = pos[o], pos[s]
            a[s, 3], b[s, 1] = vel[o], vel[s]
            wrench = (c0 + 6 * (np.asarray(me.bodies)[:, None] - 1) + np.arange(6)).reshape(-1, 3)
            a[s, 4 : 4 + len(wrench)] = wrench

        # Where each observation entry comes from in the per-game vector of derived values:
        # [turned vectors | clipped contact scale of the wrench rows | frame quaternions |
        # 5 scalars | state columns copied as they are (`raw`)].
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

        def quaternion(s: int, which: int) -> list[int]:
            return [f_quat + (k * 2 + s) * 2 + which for k in range(4)]

        take: list[int] = []
        for s, me in enumerate(idx):
            cols = vec(s, 0) + quaternion(s, 0) + vec(s, 1) + [copied(c) for c in ang[s]]
            cols += [copied(q0 + int(k)) for k in me.hinge_qpos]
            cols += [copied(v0 + int(k)) for k in me.hinge_qvel]
            cols += vec(s, 2) + vec(s, 3) + quaternion(s, 1)
            cols += [f_scal + s, f_scal + 1 - s, f_scal + 2]  # own edge, opponent's, radius
            for r in range(2 * len(me.bodies)):
                cols += contact(s, r)
            cols += [f_scal + 3, f_scal + 4]  # touching, time left
            if len(cols) != me.obs_size:
                raise AssertionError("observation layout out of step with AgentIndex.obs_size")
            take += cols + [copied(zero)] * (self.obs_dim - len(cols))

        i64 = np.int64
        self._layout = np.array([q0, v0, c0, zero, int(need_qpos), touch_col], i64)
        self._cols = (
            pos[:, :2].ravel().astype(i64),  # torso x and y of both agents: minus the centre
            pos.astype(i64),
            quat.astype(i64),
            up.astype(i64),
            np.array([i.oriented for i in idx]),
            np.array(contact_scale, np.float64),
            a.transpose(2, 0, 1).astype(i64),
            b.transpose(2, 0, 1).astype(i64),
            np.array(raw, i64),
            np.array(take, i64),
        )
        self.touch_col = touch_col

    def observe(
        self,
        data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        xy_origin: np.ndarray,
        rows: np.ndarray,
        radius: np.ndarray,
        time_left: np.ndarray,
        touching: np.ndarray | None = None,
        fresh: bool = False,
    ) -> tuple[np.ndarray, Geometry]:
        """(len(rows), 2, obs_dim) float32 observations of both seats of the given games, and
        their geometry.

        `data` are the (N, per game) views (sensordata, qpos, qvel, cfrc_ext without the world
        body) of MjData, `xy_origin` (N, 4) each game's ring centre twice; `radius`,
        `time_left` (len(rows),) the ring radii and fractions of the time limit left.
        `touching` (len(rows),): the flag to report, by default what the contact sensor says
        now; `fresh`: the games were just reset, so they do not touch (the contact sensor
        was not refreshed). A seat whose observation is shorter than `obs_dim` (mixed
        bodies) is zero-padded at the end.
        """
        n = len(rows)
        obs = np.empty((n, 2, self.obs_dim), np.float32)
        per_agent = [np.empty((n, 2)) for _ in range(5)]
        xy, sensed = np.empty((n, 2, 2)), np.empty(n, np.bool_)
        given = touching is not None
        flags = np.asarray(touching, np.float64) if given else np.zeros(n)
        _observe_games(
            *data,
            xy_origin,
            np.asarray(rows, np.int64),
            np.asarray(radius, np.float64),
            np.asarray(time_left, np.float64),
            flags,
            given,
            fresh,
            self._layout,
            *self._cols,
            obs.reshape(n, -1),
            *per_agent,
            xy,
            sensed,
        )
        radial, height, up_z, cos_yaw, sin_yaw = per_agent
        return obs, Geometry(radial, xy, height, up_z, sensed, cos_yaw, sin_yaw)


@numba.njit(cache=True, nogil=True)
def _observe_games(  # noqa: PLR0913, PLR0915 (one loop on purpose: see BatchObserver)
    sensordata: np.ndarray,
    qpos: np.ndarray,
    qvel: np.ndarray,
    cfrc: np.ndarray,
    xy_origin: np.ndarray,
    rows: np.ndarray,
    radius: np.ndarray,
    time_left: np.ndarray,
    flags: np.ndarray,
    given: bool,
    fresh: bool,
    layout: np.ndarray,
    xy_cols: np.ndarray,
    pos: np.ndarray,
    quat: np.ndarray,
    up: np.ndarray,
    oriented: np.ndarray,
    contact_scale: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    raw: np.ndarray,
    take: np.ndarray,
    obs: np.ndarray,
    radial: np.ndarray,
    height: np.ndarray,
    up_z: np.ndarray,
    cos_yaw: np.ndarray,
    sin_yaw: np.ndarray,
    xy: np.ndarray,
    touching: np.ndarray,
) -> None:
    """The loop behind `BatchObserver.observe` (its tables are documented there): for each
    game in `rows`, its state row, geometry, and observation row `obs[j]` (2 * obs_dim)."""
    q0, v0, c0, zero, need_qpos, touch_col = layout
    nrows = a.shape[2]
    nwrench = nrows - 4
    f_con = 6 * nrows
    f_quat = f_con + 6 * nwrench
    f_scal = f_quat + 16
    f_raw = f_scal + 5
    row = np.empty(zero + 1)
    derived = np.empty(f_raw + len(raw))
    vec = np.empty((3, nrows))
    q = np.empty((2, 4))  # world orientation of each agent's frame-defining torso
    hc, hs = np.empty(2), np.empty(2)
    for j in range(len(rows)):
        g = rows[j]
        # The state row.
        # (Loops, not slice copies: a slice is an array view numba builds per use.)
        for k in range(q0):
            row[k] = sensordata[g, k]
        for k in range(4):
            row[xy_cols[k]] -= xy_origin[g, k]
        if need_qpos:
            for k in range(v0 - q0):
                row[q0 + k] = qpos[g, k]
        for k in range(c0 - v0):
            row[v0 + k] = qvel[g, k]
        for k in range(zero - c0):
            row[c0 + k] = cfrc[g, k]
        row[zero] = 0.0
        if fresh:
            row[touch_col] = 0.0

        # Geometry. Headings: a disc faces the opponent; an oriented body's (ant, bug) yaw
        # is atan2(2 (w z + x y), 1 - 2 (y^2 + z^2)). cos and sin by normalising (xs, ys),
        # not through an angle: only +, -, *, / and sqrt, which IEEE rounds the same on
        # every CPU (these values turn the disc forces, so differing bits would reach the
        # physics). A zero vector (coincident discs) faces +x.
        for s in range(2):
            o = 1 - s
            x, y = row[pos[s, 0]], row[pos[s, 1]]
            xy[j, s, 0], xy[j, s, 1] = x, y
            radial[j, s] = np.sqrt(x * x + y * y)  # not hypot: ~4x its cost, no overflow here
            height[j, s] = row[pos[s, 2]]
            up_z[j, s] = row[up[s]]
            if oriented[s]:
                qw, qx, qy, qz = row[quat[s, 0]], row[quat[s, 1]], row[quat[s, 2]], row[quat[s, 3]]
                ys = 2.0 * (qw * qz + qx * qy)
                xs = 1.0 - 2.0 * (qy * qy + qz * qz)
            else:
                ys = row[pos[o, 1]] - y
                xs = row[pos[o, 0]] - x
            r = np.sqrt(xs * xs + ys * ys)
            if r == 0.0:
                cos_yaw[j, s], sin_yaw[j, s] = 1.0, ys
            else:
                cos_yaw[j, s], sin_yaw[j, s] = xs / r, ys / r
        sensed = row[touch_col] > 0.0
        touching[j] = sensed

        # 3-vectors turned into each seat's frame: (x, y) -> (c x + s y, -s x + c y);
        # contact wrenches then scaled and clipped to [-1, 1].
        for s in range(2):
            c, sn = cos_yaw[j, s], sin_yaw[j, s]
            for r in range(nrows):
                for k in range(3):
                    vec[k, r] = row[a[k, s, r]]
            for r in range(2, 4):  # opponent minus own
                for k in range(3):
                    vec[k, r] -= row[b[k, s, r - 2]]
            for r in range(nrows):
                x, y = vec[0, r], vec[1, r]
                derived[(0 + s) * nrows + r] = c * x + sn * y
                derived[(2 + s) * nrows + r] = -sn * x + c * y
                derived[(4 + s) * nrows + r] = vec[2, r]
            for r in range(nwrench):
                for k in range(3):
                    w = derived[(k * 2 + s) * nrows + 4 + r] / contact_scale[s]
                    derived[f_con + (k * 2 + s) * nwrench + r] = min(max(w, -1.0), 1.0)

        # Frame quaternions: own and opponent orientation turned by -yaw of the seat's
        # frame. Half-angle cosine and sine from the heading's: cos(a/2) = sqrt((1 +
        # cos a) / 2), sin(a/2) = sqrt((1 - cos a) / 2) with the sign of sin a. A disc's
        # world orientation is its heading about z.
        for s in range(2):
            c2 = cos_yaw[j, s]
            hc[s] = np.sqrt(max(0.5 + 0.5 * c2, 0.0))
            hs[s] = np.copysign(np.sqrt(max(0.5 - 0.5 * c2, 0.0)), sin_yaw[j, s])
            if oriented[s]:
                for k in range(4):
                    q[s, k] = row[quat[s, k]]
            else:
                q[s, 0], q[s, 1], q[s, 2], q[s, 3] = hc[s], 0.0, 0.0, hs[s]
        for s in range(2):
            c, sn = hc[s], -hs[s]
            for which in range(2):
                agent = s if which == 0 else 1 - s
                # yaw(-a) * q = (c w - s z, c x - s y, c y + s x, c z + s w), s = sin(a/2)
                t0 = c * q[agent, 0] + (-1.0 * sn) * q[agent, 3]
                t1 = c * q[agent, 1] + (-1.0 * sn) * q[agent, 2]
                t2 = c * q[agent, 2] + (1.0 * sn) * q[agent, 1]
                t3 = c * q[agent, 3] + (1.0 * sn) * q[agent, 0]
                # q and -q are the same rotation: pick one sign so equal states give equal
                # observations (w == 0 up to rounding, as for a disc opponent, is decided by
                # z): flip when w < -1e-9, or |w| <= 1e-9 and z < 0.
                key = t3 if abs(t0) <= 1e-9 else t0
                sign = -1.0 if key < 0.0 else 1.0
                base = f_quat + which
                derived[base + (0 + s) * 2] = t0 * sign
                derived[base + (2 + s) * 2] = t1 * sign
                derived[base + (4 + s) * 2] = t2 * sign
                derived[base + (6 + s) * 2] = t3 * sign

        derived[f_scal] = radius[j] - radial[j, 0]  # distance to the edge, per agent
        derived[f_scal + 1] = radius[j] - radial[j, 1]
        derived[f_scal + 2] = radius[j]
        derived[f_scal + 3] = flags[j] if given else (1.0 if sensed else 0.0)
        derived[f_scal + 4] = time_left[j]
        for i in range(len(raw)):
            derived[f_raw + i] = row[raw[i]]
        for i in range(len(take)):
            obs[j, i] = derived[take[i]]
