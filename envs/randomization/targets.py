"""Where one game's randomisable physics lives in an MjModel, with its nominal values, and
how a draw is written there.

An env that can be randomised builds one `PhysicsTargets` per game (`physics_targets(i)`):
the Fetch tasks give each game its own MjModel; `SumoVector` keeps every game in one
shared model, so a game's targets are its own bodies, joints, motors and contact pairs,
and the parameters that are global to a model (gravity, timestep) are not offered there.
Every write starts from the nominal value (draws never compound), and a parameter absent
from a draw goes back to nominal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import mujoco
import numpy as np

_NONE = np.zeros(0, dtype=int)


@dataclass
class PhysicsTargets:
    model: mujoco.MjModel
    bodies: np.ndarray = field(default_factory=lambda: _NONE)  # body_mass
    dofs: np.ndarray = field(default_factory=lambda: _NONE)  # joint_damping
    actuators: np.ndarray = field(default_factory=lambda: _NONE)  # actuator_gain (gear)
    welds: np.ndarray = field(default_factory=lambda: _NONE)  # actuator_gain (weld stiffness)
    geoms: np.ndarray = field(default_factory=lambda: _NONE)  # friction
    pairs: np.ndarray = field(default_factory=lambda: _NONE)  # friction (explicit pairs)
    object_body: int | None = None  # object_mass, object_friction, object_damping
    table_body: int | None = None  # table_height
    # Env-side consequences of a table height change (where objects start, goal heights).
    on_table_height: Callable[[float], None] | None = None
    owns_model: bool = False  # the model holds this game alone: gravity and timestep may change

    def __post_init__(self) -> None:
        m = self.model
        if self.object_body is not None:
            self.object_geoms = np.flatnonzero(m.geom_bodyid == self.object_body)
            self.object_dofs = np.flatnonzero(m.dof_bodyid == self.object_body)
        self._priority = m.geom_priority.copy()
        masses = self._mass_bodies()
        self._nominal = {
            "mass": m.body_mass[masses].copy(),
            "inertia": m.body_inertia[masses].copy(),
            "damping": m.dof_damping.copy(),
            "gear": m.actuator_gear[self.actuators, 0].copy(),
            "solref": m.eq_solref[self.welds].copy(),
            "friction": m.geom_friction[:, 0].copy(),
            "pair_friction": m.pair_friction[self.pairs, :2].copy(),
            "table_z": m.body_pos[self.table_body, 2] if self.table_body is not None else 0.0,
            "gravity": m.opt.gravity.copy(),
            "timestep": m.opt.timestep,
        }
        self._scratch = mujoco.MjData(m)  # mj_setConst's workspace: never the live data

    def _mass_bodies(self) -> np.ndarray:
        extra = [] if self.object_body is None else [self.object_body]
        return np.concatenate([self.bodies, np.asarray(extra, dtype=int)]).astype(int)

    @property
    def supported(self) -> frozenset[str]:
        """The parameters this game can change (envs/randomization checks configs against it)."""
        names = {"action_latency", "observation_noise"}  # applied by the wrapper, not the model
        if len(self.bodies):
            names.add("body_mass")
        if len(self.dofs):
            names.add("joint_damping")
        if len(self.actuators) or len(self.welds):
            names.add("actuator_gain")
        if len(self.geoms) or len(self.pairs):
            names.add("friction")
        if self.object_body is not None:
            names |= {"object_mass", "object_friction", "object_damping"}
        if self.table_body is not None:
            names.add("table_height")
        if self.owns_model:
            names |= {"gravity", "timestep_jitter"}
        return frozenset(names)

    @property
    def nominal_timestep(self) -> float:
        return float(self._nominal["timestep"])

    def apply(self, values: Mapping[str, float]) -> None:
        """Writes a draw into the model; parameters absent from `values` go to nominal."""
        m, nom = self.model, self._nominal
        scale = np.ones(len(self._mass_bodies()))
        scale[: len(self.bodies)] = values.get("body_mass", 1.0)
        if self.object_body is not None:
            scale[-1] = values.get("object_mass", 1.0)
        masses = self._mass_bodies()
        m.body_mass[masses] = nom["mass"] * scale
        m.body_inertia[masses] = nom["inertia"] * scale[:, None]  # same shape, heavier stuff

        # Only this game's entries: a shared model holds the other games' too.
        m.dof_damping[self.dofs] = nom["damping"][self.dofs] * values.get("joint_damping", 1.0)
        if self.object_body is not None:
            m.dof_damping[self.object_dofs] = values.get(
                "object_damping", nom["damping"][self.object_dofs]
            )

        gain = values.get("actuator_gain", 1.0)
        m.actuator_gear[self.actuators, 0] = nom["gear"] * gain
        # A weld's stiffness goes as 1 / timeconst^2: gain g shortens timeconst by sqrt(g).
        solref = nom["solref"].copy()
        solref[:, 0] /= np.sqrt(gain)
        m.eq_solref[self.welds] = solref

        # MuJoCo gives a contact the larger of its two geoms' friction unless one geom has
        # priority: a randomised geom gets it, so its own value counts (the object on the
        # table; an agent on the floor all games share). Nominal draws keep the model's.
        m.geom_friction[self.geoms, 0] = nom["friction"][self.geoms] * values.get("friction", 1.0)
        m.geom_priority[self.geoms] = self._priority[self.geoms] + ("friction" in values)
        if self.object_body is not None:
            m.geom_friction[self.object_geoms, 0] = values.get(
                "object_friction", nom["friction"][self.object_geoms]
            )
            prioritised = "object_friction" in values
            m.geom_priority[self.object_geoms] = self._priority[self.object_geoms] + prioritised
        m.pair_friction[self.pairs, :2] = nom["pair_friction"] * values.get("friction", 1.0)

        if self.table_body is not None:
            height = values.get("table_height", 0.0)
            m.body_pos[self.table_body, 2] = nom["table_z"] + height
            if self.on_table_height is not None:
                self.on_table_height(height)
        if self.owns_model:
            g = values.get("gravity")
            m.opt.gravity[:] = nom["gravity"] if g is None else (0.0, 0.0, -g)
            m.opt.timestep = nom["timestep"]
        # Masses feed constants the solver reads (body_invweight0, dof_invweight0, ...).
        mujoco.mj_setConst(m, self._scratch)

    def jitter_timestep(self, factor: float) -> None:
        """This control step's physics timestep: nominal x factor (own models only)."""
        if not self.owns_model:
            raise ValueError("timestep jitter needs a model per game")
        self.model.opt.timestep = self.nominal_timestep * factor


def named_ids(model: mujoco.MjModel, kind: mujoco.mjtObj, count: int, prefix: str) -> np.ndarray:
    """Ids of the `kind` objects whose names start with `prefix`."""
    return np.array(
        [i for i in range(count) if (mujoco.mj_id2name(model, kind, i) or "").startswith(prefix)],
        dtype=int,
    )
