"""Build the sumo arena as MJCF text from parameters.

The arena is a large flat floor plus a purely visual ring disc. The ring never collides: its
radius changes per episode, and "out of the ring" is judged in Python from the torso's xy
distance to the origin, so the env only rescales the ring geom for rendering.

Every name an agent owns starts with its prefix ("a0_", "a1_") so the env can find its joints,
bodies, geoms, actuators and sensors by name without knowing the body type.

Sensors copy what the env reads after each control step (torso pose, and whether the agents
touch) into one `sensordata` row, so the batched env gathers one array per game instead of
several; they do not change the physics (see envs/sumo/vector.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TIMESTEP = 0.003
FRAME_SKIP = 5
RING_GEOM = "ring"
TOUCH_SENSOR = "agents_touch"  # number of contacts between the two agents' subtrees
FLOOR_HALF = 10.0  # larger than any ring, so agents that leave the ring still stand on floor
AGENT_RGBA = ("0.85 0.25 0.2 1", "0.2 0.4 0.85 1")

# Collision filtering: floor=1/1, ant=1/3, disc=2/2. A pair collides when
# (contype_a & conaffinity_b) or (contype_b & conaffinity_a) is non-zero, so discs touch
# discs and ants, ants touch everything, and discs float just above the floor without
# touching it (their friction comes from joint damping, which is cheaper and smoother).
_ANT_COLLIDE = 'contype="1" conaffinity="3"'
_DISC_COLLIDE = 'contype="2" conaffinity="2"'


@dataclass(frozen=True)
class BodySpec:
    """What the env must know about a body type beyond the MJCF itself."""

    kind: str
    start_height: float  # torso z at reset
    fall_height: float | None  # torso below this height counts as fallen; None: cannot fall
    default_radius: tuple[float, float]  # ring radius range suited to this body
    default_max_steps: int


BODY_SPECS: dict[str, BodySpec] = {
    "disc": BodySpec("disc", 0.32, None, (1.5, 2.5), 300),
    "ant": BodySpec("ant", 0.75, 0.3, (2.5, 4.5), 500),
}

DISC_RADIUS = 0.3
DISC_MASS = 20.0
DISC_GEAR = 60.0  # N; with the damping below gives ~4 m/s top speed
DISC_DAMPING = 15.0  # N s/m; stands in for floor friction (see the docstring of _disc)

ANT_TORSO_RADIUS = 0.25
ANT_THIGH = 0.3
ANT_SHIN = 0.55
ANT_LIMB_RADIUS = 0.08
ANT_GEAR = 150.0
ANT_HIP_RANGE = (-40.0, 40.0)  # degrees, swing about the vertical axis
ANT_ANKLE_RANGE = (30.0, 80.0)  # degrees, positive bends the shin down


def _disc(p: str, rgba: str) -> tuple[str, str]:
    # A sphere at fixed height moving on two slide joints: sphere-sphere contact is analytic
    # and always horizontal, so it behaves like a puck at a fraction of a cylinder's cost.
    body = f"""
    <body name="{p}torso" pos="0 0 {BODY_SPECS["disc"].start_height}">
      <joint name="{p}slide_x" type="slide" axis="1 0 0" damping="{DISC_DAMPING}"/>
      <joint name="{p}slide_y" type="slide" axis="0 1 0" damping="{DISC_DAMPING}"/>
      <geom name="{p}torso_geom" type="sphere" size="{DISC_RADIUS}" mass="{DISC_MASS}"
            rgba="{rgba}" {_DISC_COLLIDE}/>
    </body>"""
    acts = f"""
    <motor name="{p}force_x" joint="{p}slide_x" gear="{DISC_GEAR}"/>
    <motor name="{p}force_y" joint="{p}slide_y" gear="{DISC_GEAR}"/>"""
    return body, acts


def _ant(p: str, rgba: str) -> tuple[str, str]:
    legs, acts = [], []
    for i, deg in enumerate((45, 135, 225, 315)):
        c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        hip = (ANT_TORSO_RADIUS * c, ANT_TORSO_RADIUS * s)
        knee = (ANT_THIGH * c, ANT_THIGH * s)
        foot = (ANT_SHIN * c, ANT_SHIN * s)
        # The ankle axis is horizontal and perpendicular to the leg, oriented so a positive
        # angle rotates the (initially horizontal) shin downwards.
        legs.append(f"""
      <body name="{p}thigh_{i}" pos="{hip[0]:.4f} {hip[1]:.4f} 0">
        <joint name="{p}hip_{i}" type="hinge" axis="0 0 1"
               range="{ANT_HIP_RANGE[0]} {ANT_HIP_RANGE[1]}"/>
        <geom name="{p}thigh_geom_{i}" type="capsule" size="{ANT_LIMB_RADIUS}"
              fromto="0 0 0 {knee[0]:.4f} {knee[1]:.4f} 0" rgba="{rgba}" {_ANT_COLLIDE}/>
        <body name="{p}shin_{i}" pos="{knee[0]:.4f} {knee[1]:.4f} 0">
          <joint name="{p}ankle_{i}" type="hinge" axis="{-s:.4f} {c:.4f} 0"
                 range="{ANT_ANKLE_RANGE[0]} {ANT_ANKLE_RANGE[1]}"/>
          <geom name="{p}shin_geom_{i}" type="capsule" size="{ANT_LIMB_RADIUS}"
                fromto="0 0 0 {foot[0]:.4f} {foot[1]:.4f} 0" rgba="{rgba}" {_ANT_COLLIDE}/>
        </body>
      </body>""")
        for joint in (f"hip_{i}", f"ankle_{i}"):
            acts.append(
                f'\n    <motor name="{p}{joint}_motor" joint="{p}{joint}" gear="{ANT_GEAR}"/>'
            )
    body = f"""
    <body name="{p}torso" pos="0 0 {BODY_SPECS["ant"].start_height}">
      <freejoint name="{p}root"/>
      <geom name="{p}torso_geom" type="sphere" size="{ANT_TORSO_RADIUS}" rgba="{rgba}"
            {_ANT_COLLIDE}/>{"".join(legs)}
    </body>"""
    return body, "".join(acts)


_BUILDERS = {"disc": _disc, "ant": _ant}


def _sensors(p: str) -> str:
    # objtype="xbody" reads the body frame itself (xpos, xquat, xmat), not the inertial frame,
    # so the values are bit-identical to MjData.xpos / xquat / xmat[:, 6:9] of the torso.
    obj = f'objtype="xbody" objname="{p}torso"'
    return f"""
    <framepos name="{p}torso_pos" {obj}/>
    <framequat name="{p}torso_quat" {obj}/>
    <framezaxis name="{p}torso_zaxis" {obj}/>"""


def agent_prefix(index: int) -> str:
    return f"a{index}_"


def build_xml(bodies: tuple[str, str], ring_radius: float = 2.0) -> str:
    """MJCF for two agents with the given body types; `ring_radius` only sets the visual."""
    for kind in bodies:
        if kind not in _BUILDERS:
            raise ValueError(f"unknown body {kind!r}; choose from {sorted(_BUILDERS)}")
    parts = [_BUILDERS[k](agent_prefix(i), AGENT_RGBA[i]) for i, k in enumerate(bodies)]
    agents_xml = "".join(b for b, _ in parts)
    acts_xml = "".join(a for _, a in parts)
    p0, p1 = agent_prefix(0), agent_prefix(1)
    # The contact sensor counts contacts with one geom in each agent's subtree, the same test
    # as scanning MjData.contact for a geom pair owned by different agents.
    sensors_xml = (
        _sensors(p0)
        + _sensors(p1)
        + f"""
    <contact name="{TOUCH_SENSOR}" subtree1="{p0}torso" subtree2="{p1}torso" data="found"/>"""
    )
    return f"""<mujoco model="sumo">
  <compiler angle="degree" autolimits="true"/>
  <option timestep="{TIMESTEP}"/>
  <visual><global offwidth="640" offheight="640"/></visual>
  <default>
    <geom friction="1 0.5 0.5" condim="3"/>
    <motor ctrlrange="-1 1"/>
  </default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1=".3 .3 .3" rgb2=".35 .35 .35"
             width="128" height="128"/>
    <material name="grid" texture="grid" texrepeat="8 8"/>
  </asset>
  <worldbody>
    <light pos="0 0 8" dir="0 0 -1" directional="true"/>
    <geom name="floor" type="plane" size="{FLOOR_HALF} {FLOOR_HALF} 0.1" material="grid"
          contype="1" conaffinity="1"/>
    <geom name="{RING_GEOM}" type="cylinder" size="{ring_radius} 0.002" pos="0 0 0.002"
          rgba="0.9 0.8 0.55 1" contype="0" conaffinity="0"/>{agents_xml}
  </worldbody>
  <actuator>{acts_xml}
  </actuator>
  <sensor>{sensors_xml}
  </sensor>
</mujoco>
"""
