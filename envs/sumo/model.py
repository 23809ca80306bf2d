"""Build the sumo arena as MJCF text from parameters: one game, or many games in one model.

Each game is a round ring with two agents. The ring never collides: its radius changes per
episode, and "out of the ring" is judged in Python from the torso's xy distance to the ring
centre, so the env only rescales the ring geom for rendering (game 0's).

Many games share one model (`num_games`), each in its own *arena*: a ring centre on a grid
`spacing` metres apart on one floor, far enough that agents of different games never meet.
One `mj_step` then advances every game: for the cheap bodies MuJoCo's fixed cost per call
outweighs the physics of one game, so stepping 256 two-disc games in one model measured ~5x
faster than stepping 256 one-game MjData from Python (BENCHMARKS.md, "Sumo env speed").
The games stay independent (constraint islands are solved separately), but not bit-identical
to a one-game model: game g's coordinates are offset by its arena centre, which changes the
rounding of the contact geometry in the last bits. Game 0 sits at the origin.

Every name an agent owns starts with its prefix: `game_prefix(g) + agent_prefix(k)` ("a0_",
"a1_" in game 0, "g3_a0_" in game 3), so the env finds joints, bodies, geoms, actuators and
sensors by name without knowing the body type. Game g's bodies, joints, actuators and
sensors come as one block after game g-1's, so a (num_games, per game) reshape of a MjData
array gives each game's row.

Sensors copy what the env reads after each control step (torso pose, and whether the agents
touch) into `sensordata`, so the batched env reads one array instead of several; they do not
change the physics (see envs/sumo/vector.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TIMESTEP = 0.003
FRAME_SKIP = 5
RING_GEOM = "ring"
BUG_YAW_JOINT = "yaw"  # the bug's heading joint: its root, not a limb (no joint observation)
TOUCH_SENSOR = "agents_touch"  # number of contacts between the two agents' subtrees
FLOOR_HALF = 10.0  # the floor plane collides everywhere; this only sizes its drawing
ARENA_MARGIN = 12.0  # m between neighbouring rings' edges (a finished game's agents drift)
AGENT_RGBA = ("0.85 0.25 0.2 1", "0.2 0.4 0.85 1")

# Collision filtering: floor=1/1, ant=1/3, disc and bug=2/2. A pair collides when
# (contype_a & conaffinity_b) or (contype_b & conaffinity_a) is non-zero, so discs touch
# discs and ants, ants touch everything, and discs float just above the floor without
# touching it (their friction comes from joint damping, which is cheaper and smoother).
# Without an ant, the only contact a game can have is between its two agents: then their
# geoms collide through one explicit <pair> per game and take no part in the broad phase,
# whose cost and memory grow faster than linearly with the number of geoms (1024 two-disc
# games in one model asked for 680 MB).
_ANT_COLLIDE = 'contype="1" conaffinity="3"'
_DISC_COLLIDE = 'contype="2" conaffinity="2"'
_PAIR_ONLY = 'contype="0" conaffinity="0"'


@dataclass(frozen=True)
class BodySpec:
    """What the env must know about a body type beyond the MJCF itself."""

    kind: str
    start_height: float  # torso z at reset
    fall_height: float | None  # torso below this height counts as fallen; None: cannot fall
    default_radius: tuple[float, float]  # ring radius range suited to this body
    default_max_steps: int
    # N: the observation divides contact forces by this before clipping to [-1, 1]; about
    # the body's weight, so standing reads ~1 and a hard shove saturates
    contact_scale: float


BODY_SPECS: dict[str, BodySpec] = {
    # The disc and bug touch only each other (they float); 500 N predates per-body scales
    # and is kept so their trained configs see what they always saw.
    "disc": BodySpec("disc", 0.32, None, (1.5, 2.5), 300, 500.0),
    "ant": BodySpec("ant", 0.75, 0.3, (2.5, 4.5), 500, 10.0),  # weight 7.4 N
    "bug": BodySpec("bug", 0.32, None, (1.5, 2.5), 500, 500.0),
}

DISC_RADIUS = 0.3
DISC_MASS = 20.0
DISC_GEAR = 60.0  # N; with the damping below gives ~4 m/s top speed
DISC_DAMPING = 15.0  # N s/m; stands in for floor friction (see the docstring of _disc)

# The bug: the disc's size and mass, but it pushes only along its heading and must turn to
# aim (see the docstring of _bug).
BUG_THRUST = 60.0  # N along the heading; with DISC_DAMPING, ~4 m/s top speed
BUG_TURN = 20.0  # N m about the vertical axis
BUG_YAW_DAMPING = 8.0  # N m s/rad: top turn rate BUG_TURN / BUG_YAW_DAMPING = 2.5 rad/s

ANT_TORSO_RADIUS = 0.25
ANT_THIGH = 0.3
ANT_SHIN = 0.55
ANT_LIMB_RADIUS = 0.08
ANT_GEAR = 150.0
# Gymnasium's Ant (the body of Bansal et al.): geom density 5 kg/m^3, hinge armature 1 and
# damping 1. MuJoCo's default density (1000, water) made a 151 kg ant that the 150 N m
# motors could barely walk (~0.5 m/s after 8 M steps, run ant5) or push with; at density 5
# it weighs 0.75 kg, random actions move it ~0.7 m/s (0.2 m/s before), and the armature
# keeps the light limbs stable at our 3 ms step.
ANT_DENSITY = 5.0
ANT_JOINT_ARMATURE = 1.0
ANT_JOINT_DAMPING = 1.0
_ANT_GEOM = f'{_ANT_COLLIDE} density="{ANT_DENSITY}"'
_ANT_JOINT = f'armature="{ANT_JOINT_ARMATURE}" damping="{ANT_JOINT_DAMPING}"'
ANT_HIP_RANGE = (-40.0, 40.0)  # degrees, swing about the vertical axis
ANT_ANKLE_RANGE = (30.0, 80.0)  # degrees, positive bends the shin down


def _pos(origin: tuple[float, float], z: float) -> str:
    return f"{origin[0]:.6g} {origin[1]:.6g} {z}"


def _disc(p: str, rgba: str, origin: tuple[float, float], collide: str) -> tuple[str, str]:
    # A sphere at fixed height moving on two slide joints: sphere-sphere contact is analytic
    # and always horizontal, so it behaves like a puck at a fraction of a cylinder's cost.
    body = f"""
    <body name="{p}torso" pos="{_pos(origin, BODY_SPECS["disc"].start_height)}">
      <joint name="{p}slide_x" type="slide" axis="1 0 0" damping="{DISC_DAMPING}"/>
      <joint name="{p}slide_y" type="slide" axis="0 1 0" damping="{DISC_DAMPING}"/>
      <geom name="{p}torso_geom" type="sphere" size="{DISC_RADIUS}" mass="{DISC_MASS}"
            rgba="{rgba}" {collide}/>
    </body>"""
    acts = f"""
    <motor name="{p}force_x" joint="{p}slide_x" gear="{DISC_GEAR}"/>
    <motor name="{p}force_y" joint="{p}slide_y" gear="{DISC_GEAR}"/>"""
    return body, acts


def _bug(p: str, rgba: str, origin: tuple[float, float], collide: str) -> tuple[str, str]:
    # The disc's sphere on two slides plus a yaw hinge: it has a heading, thrusts only along
    # it (forwards or backwards) and turns with a torque. That makes aim and angle matter:
    # pushed from the side it cannot push back until it has turned, and at speed it turns
    # in a wide arc (top speed / top turn rate = 1.6 m), so a straight charge can be
    # sidestepped and flanked. The nose only shows the heading; it never collides.
    # Thrust drives the two slide motors, split along the heading the agent last observed
    # (SumoVector), like a disc's force: a motor on a site would follow the heading within
    # the step too, but MuJoCo computes a site transmission with a Jacobian over every dof
    # of the model, which made 256 games in one model ~5x slower per game.
    r = DISC_RADIUS
    body = f"""
    <body name="{p}torso" pos="{_pos(origin, BODY_SPECS["bug"].start_height)}">
      <joint name="{p}slide_x" type="slide" axis="1 0 0" damping="{DISC_DAMPING}"/>
      <joint name="{p}slide_y" type="slide" axis="0 1 0" damping="{DISC_DAMPING}"/>
      <joint name="{p}{BUG_YAW_JOINT}" type="hinge" axis="0 0 1" damping="{BUG_YAW_DAMPING}"/>
      <geom name="{p}torso_geom" type="sphere" size="{r}" mass="{DISC_MASS}" rgba="{rgba}"
            {collide}/>
      <geom name="{p}nose" type="box" size="{0.3 * r} {0.15 * r} {0.15 * r}"
            pos="{r} 0 0" rgba="0.95 0.95 0.95 1" contype="0" conaffinity="0" mass="0"/>
    </body>"""
    acts = f"""
    <motor name="{p}force_x" joint="{p}slide_x" gear="{BUG_THRUST}"/>
    <motor name="{p}force_y" joint="{p}slide_y" gear="{BUG_THRUST}"/>
    <motor name="{p}turn" joint="{p}{BUG_YAW_JOINT}" gear="{BUG_TURN}"/>"""
    return body, acts


def _ant(p: str, rgba: str, origin: tuple[float, float], collide: str) -> tuple[str, str]:
    # Always filtered collisions (`collide` is for the pair-only cheap bodies): an ant
    # touches the floor and whatever it meets.
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
        <joint name="{p}hip_{i}" type="hinge" axis="0 0 1" {_ANT_JOINT}
               range="{ANT_HIP_RANGE[0]} {ANT_HIP_RANGE[1]}"/>
        <geom name="{p}thigh_geom_{i}" type="capsule" size="{ANT_LIMB_RADIUS}"
              fromto="0 0 0 {knee[0]:.4f} {knee[1]:.4f} 0" rgba="{rgba}" {_ANT_GEOM}/>
        <body name="{p}shin_{i}" pos="{knee[0]:.4f} {knee[1]:.4f} 0">
          <joint name="{p}ankle_{i}" type="hinge" axis="{-s:.4f} {c:.4f} 0" {_ANT_JOINT}
                 range="{ANT_ANKLE_RANGE[0]} {ANT_ANKLE_RANGE[1]}"/>
          <geom name="{p}shin_geom_{i}" type="capsule" size="{ANT_LIMB_RADIUS}"
                fromto="0 0 0 {foot[0]:.4f} {foot[1]:.4f} 0" rgba="{rgba}" {_ANT_GEOM}/>
        </body>
      </body>""")
        for joint in (f"hip_{i}", f"ankle_{i}"):
            acts.append(
                f'\n    <motor name="{p}{joint}_motor" joint="{p}{joint}" gear="{ANT_GEAR}"/>'
            )
    body = f"""
    <body name="{p}torso" pos="{_pos(origin, BODY_SPECS["ant"].start_height)}">
      <freejoint name="{p}root"/>
      <geom name="{p}torso_geom" type="sphere" size="{ANT_TORSO_RADIUS}" rgba="{rgba}"
            {_ANT_GEOM}/>{"".join(legs)}
    </body>"""
    return body, "".join(acts)


_BUILDERS = {"disc": _disc, "bug": _bug, "ant": _ant}


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


def game_prefix(game: int) -> str:
    return "" if game == 0 else f"g{game}_"


def arena_spacing(ring_radius: tuple[float, float]) -> float:
    """Distance between neighbouring arena centres for rings up to `ring_radius[1]`."""
    return 2.0 * float(ring_radius[1]) + ARENA_MARGIN


def arena_origins(num_games: int, spacing: float) -> np.ndarray:
    """(num_games, 2) ring centres: a square grid, game 0 at the origin."""
    columns = math.ceil(math.sqrt(num_games))
    g = np.arange(num_games)
    return np.stack([g % columns, g // columns], axis=1) * float(spacing)


def build_xml(
    bodies: tuple[str, str],
    ring_radius: float = 2.0,
    num_games: int = 1,
    spacing: float = 0.0,
) -> str:
    """MJCF for `num_games` games of two agents with the given body types, arenas `spacing`
    apart (module docstring); `ring_radius` only sets game 0's visual ring."""
    for kind in bodies:
        if kind not in _BUILDERS:
            raise ValueError(f"unknown body {kind!r}; choose from {sorted(_BUILDERS)}")
    if num_games > 1 and spacing <= 0.0:
        raise ValueError("several games need a positive arena spacing")
    pairs_only = "ant" not in bodies
    collide = _PAIR_ONLY if pairs_only else _DISC_COLLIDE
    agents, acts, sensors, pairs = [], [], [], []
    for g, origin in enumerate(arena_origins(num_games, spacing)):
        xy = (float(origin[0]), float(origin[1]))
        prefixes = [game_prefix(g) + agent_prefix(k) for k in range(2)]
        for k, kind in enumerate(bodies):
            body, act = _BUILDERS[kind](prefixes[k], AGENT_RGBA[k], xy, collide)
            agents.append(body)
            acts.append(act)
        if pairs_only:
            p0, p1 = prefixes
            pairs.append(f"""
    <pair geom1="{p0}torso_geom" geom2="{p1}torso_geom" condim="3" friction="1 1"/>""")
        # The contact sensor counts contacts with one geom in each agent's subtree, the same
        # test as scanning MjData.contact for a geom pair owned by different agents.
        p0, p1 = prefixes
        sensors.append(
            _sensors(p0)
            + _sensors(p1)
            + f"""
    <contact name="{game_prefix(g)}{TOUCH_SENSOR}" subtree1="{p0}torso" subtree2="{p1}torso"
             data="found"/>"""
        )
    agents_xml, acts_xml, sensors_xml = "".join(agents), "".join(acts), "".join(sensors)
    contact_xml = f"\n  <contact>{''.join(pairs)}\n  </contact>" if pairs else ""
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
  </worldbody>{contact_xml}
  <actuator>{acts_xml}
  </actuator>
  <sensor>{sensors_xml}
  </sensor>
</mujoco>
"""
