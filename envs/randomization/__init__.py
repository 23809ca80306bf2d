"""Dynamics randomisation (Peng et al. 2017) for sim2real jobs: every episode of every
game draws its physics from configured ranges (core/dynamics.py) and writes them into the
MuJoCo model the game runs in.

- targets.py: where a game's masses, damping, gains, friction, object and table live in
  an MjModel, and how a draw is written there (always from the nominal values);
- randomizer.py: the per-game draw (seeded per game) and what happens between policy and
  physics: action latency, timestep jitter, observation noise;
- wrappers.py: `randomized(env, ranges, seed)` for the goal tasks (Fetch) and the batched
  sumo env, each recording the parameters of every episode.
"""

from envs.randomization.randomizer import DynamicsSampler, Randomizer
from envs.randomization.targets import PhysicsTargets
from envs.randomization.wrappers import RandomizedBatchedEnv, RandomizedGoalVector, randomized

__all__ = [
    "DynamicsSampler",
    "PhysicsTargets",
    "RandomizedBatchedEnv",
    "RandomizedGoalVector",
    "Randomizer",
    "randomized",
]
