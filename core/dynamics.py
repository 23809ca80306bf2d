"""Dynamics randomisation settings (sim2real jobs): which physical parameters change every
episode, over which ranges, and the named held-out sets that evaluation alone uses.

The parameter table below is the one list of what can be randomised: the config models,
the sampler's vector order (envs/randomization) and the recorded per-episode values all
follow it. Ranges are validated here, so a config cannot ask for a negative mass or a
fractional latency; whether an env can apply a parameter is the env wrapper's check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


@dataclass(frozen=True)
class Parameter:
    name: str
    unit: str  # "scale": a factor of the env's nominal value
    lowest: float  # the physically meaningful bounds a range must stay within
    highest: float
    doc: str
    integer: bool = False


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("body_mass", "scale", 0.01, 100.0, "every link of the robot (agents') bodies"),
    Parameter("joint_damping", "scale", 0.0, 1000.0, "every joint of the robot (agents)"),
    Parameter(
        "actuator_gain",
        "scale",
        0.01,
        100.0,
        "motor gears; Fetch: the stiffness of the weld that drags the gripper to its target",
    ),
    Parameter("friction", "scale", 0.0, 100.0, "sliding friction of the robot's (agents') geoms"),
    Parameter("object_mass", "scale", 0.01, 100.0, "the manipulated object's mass"),
    Parameter("object_friction", "coefficient", 0.0, 10.0, "the object's sliding friction"),
    Parameter("object_damping", "N s/m", 0.0, 10.0, "the object's free joint damping"),
    Parameter("table_height", "m", -0.1, 0.1, "the table's height change (object, goals follow)"),
    Parameter("gravity", "m/s^2", 0.0, 30.0, "gravity's magnitude"),
    Parameter(
        "action_latency",
        "control steps",
        0,
        10,
        "how many control steps late an action is applied",
        integer=True,
    ),
    Parameter(
        "timestep_jitter",
        "fraction",
        0.0,
        0.5,
        "each control step's physics timestep is nominal x U(1 - j, 1 + j)",
    ),
    Parameter(
        "observation_noise",
        "std",
        0.0,
        1.0,
        "Gaussian noise added to the policy's observation (not to goals or rewards)",
    ),
)
PARAMETER_NAMES: tuple[str, ...] = tuple(p.name for p in PARAMETERS)
BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}


class DynamicsRanges(BaseModel):
    """Per parameter: a [low, high] range drawn uniformly once per episode, a single
    number (always that value), or absent (the env's nominal value)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    body_mass: tuple[float, float] | None = None
    joint_damping: tuple[float, float] | None = None
    actuator_gain: tuple[float, float] | None = None
    friction: tuple[float, float] | None = None
    object_mass: tuple[float, float] | None = None
    object_friction: tuple[float, float] | None = None
    object_damping: tuple[float, float] | None = None
    table_height: tuple[float, float] | None = None
    gravity: tuple[float, float] | None = None
    action_latency: tuple[int, int] | None = None
    timestep_jitter: tuple[float, float] | None = None
    observation_noise: tuple[float, float] | None = None

    @model_validator(mode="before")
    @classmethod
    def _points_are_ranges(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {
                k: (v, v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                for k, v in data.items()
            }
        return data

    @model_validator(mode="after")
    def _within_bounds(self) -> DynamicsRanges:
        for name, (low, high) in self.ranges().items():
            p = BY_NAME[name]
            if not low <= high:
                raise ValueError(f"{name}: low {low} is above high {high}")
            if low < p.lowest or high > p.highest:
                raise ValueError(
                    f"{name}: [{low}, {high}] leaves the bounds [{p.lowest}, {p.highest}] "
                    f"({p.unit}: {p.doc})"
                )
        return self

    def ranges(self) -> dict[str, tuple[float, float]]:
        """The parameters set, in the table's order."""
        return {n: r for n in PARAMETER_NAMES if (r := getattr(self, n)) is not None}

    def contains(self, values: dict[str, float]) -> bool:
        """Whether a draw's `values` lie within these ranges (parameters unset here must
        be absent from `values`)."""
        mine = self.ranges()
        if set(values) != set(mine):
            return False
        return all(mine[n][0] <= v <= mine[n][1] for n, v in values.items())


def peng_2017() -> DynamicsRanges:
    """Peng et al. 2017's ranges for pushing a puck, mapped onto Fetch push: link masses
    0.25-4x, joint damping 0.2-20x, controller gains 0.5-2x, puck friction 0.1-5, puck
    damping 0.01-0.2 N s/m, table height 0.73-0.77 m (+-2 cm here), one control step of
    latency at most. Their puck weighed 0.1-0.4 kg, a factor of 4 around its middle: the
    Fetch block (2 kg) is scaled 0.5-2x. Their timestep and observation noise figures
    are not given as ranges: 10% jitter and 5 mm of noise (positions are metres) here."""
    return DynamicsRanges(
        body_mass=(0.25, 4.0),
        joint_damping=(0.2, 20.0),
        actuator_gain=(0.5, 2.0),
        object_mass=(0.5, 2.0),
        object_friction=(0.1, 5.0),
        object_damping=(0.01, 0.2),
        table_height=(-0.02, 0.02),
        action_latency=(0, 1),
        timestep_jitter=(0.0, 0.1),
        observation_noise=(0.0, 0.005),
    )


class Randomization(BaseModel):
    """`train`: the ranges every training episode draws from (default: Peng et al.'s, for
    Fetch push). `heldout`: named dynamics that only `selfplay eval --dynamics heldout`
    plays; each is a DynamicsRanges too, usually single values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train: DynamicsRanges = Field(default_factory=peng_2017)
    heldout: dict[str, DynamicsRanges] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _heldout_names(self) -> Randomization:
        for name in self.heldout:
            if not name.replace("_", "").replace("-", "").isalnum() or len(name) > 32:
                raise ValueError(f"heldout: bad set name {name!r} ([A-Za-z0-9_-]{{1,32}})")
        return self
