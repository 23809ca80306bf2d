"""MuJoCo two-agent sumo (disc and ant bodies): a PettingZoo ParallelEnv (one game) and a
batched core stepping many games per call (SumoVector)."""

from envs.sumo.sumo_env import SumoEnv, env, parallel_env
from envs.sumo.vector import SumoVector

__all__ = ["SumoEnv", "SumoVector", "env", "parallel_env"]
