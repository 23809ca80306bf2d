"""Where an episode starts: the ring radius and both agents' starting pose.

Agents start on opposite sides of the centre, `START_FRACTION` of the radius out, facing
each other, with small random jitter in position, heading and (ants) joint angles and
velocities. Random numbers are drawn in a fixed order, so a seed fixes the episode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from envs.sumo.indexing import AgentIndex
from envs.sumo.model import BodySpec

START_FRACTION = 0.4  # start this fraction of the radius from the centre
POS_JITTER = 0.1  # m
YAW_JITTER = 0.15  # rad
JOINT_JITTER = 0.05  # rad (ant hinges), and m/s or rad/s for velocities


def place_agents(
    rng: np.random.Generator,
    ring_radius: tuple[float, float],
    agents: Sequence[AgentIndex],
    specs: Sequence[BodySpec],
    qpos: np.ndarray,
    qvel: np.ndarray,
    origin: Sequence[float] = (0.0, 0.0),
) -> float:
    """Draws the episode's ring radius, writes both start poses into one game's `qpos` /
    `qvel` (reset to the model's defaults) and returns the radius. `origin` is the game's
    ring centre: a free joint's position is in world coordinates, a slide's is relative to
    its body, which already sits at the centre."""
    lo, hi = ring_radius
    radius = float(rng.uniform(lo, hi))
    start = START_FRACTION * radius
    for k, idx in enumerate(agents):
        side = -1.0 if k == 0 else 1.0
        x = side * start + rng.uniform(-POS_JITTER, POS_JITTER)
        y = rng.uniform(-POS_JITTER, POS_JITTER)
        root = idx.root_qpos
        qpos[root[0]], qpos[root[1]] = x, y
        if idx.oriented:
            # agent_0 on -x faces +x (yaw 0); agent_1 on +x faces -x (yaw pi)
            yaw = (0.0 if k == 0 else math.pi) + rng.uniform(-YAW_JITTER, YAW_JITTER)
            if idx.free:
                qpos[root[0]] += origin[0]
                qpos[root[1]] += origin[1]
                qpos[root[2]] = specs[k].start_height
                qpos[root[3:7]] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
            else:  # the bug's yaw hinge
                qpos[root[2]] = yaw
        n = len(idx.hinge_qpos)
        if n:  # (drawing no numbers would leave the generator as it is anyway)
            qpos[idx.hinge_qpos] = idx.hinge_nominal + rng.uniform(-JOINT_JITTER, JOINT_JITTER, n)
            qvel[idx.hinge_qvel] = rng.uniform(-JOINT_JITTER, JOINT_JITTER, n)
    return radius
