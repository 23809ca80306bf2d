"""MuJoCo two-agent sumo (disc, bug and ant bodies): a PettingZoo ParallelEnv (one game), a
batched core stepping many games per call (SumoVector), and the "charge" bot."""

from envs.sumo import scripted  # registers the charge bot (envs/bots.py)
from envs.sumo.sumo_env import SumoEnv, env, parallel_env
from envs.sumo.vector import SumoVector

__all__ = ["SumoEnv", "SumoVector", "env", "parallel_env", "scripted"]
