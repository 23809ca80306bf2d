"""MuJoCo two-agent sumo (disc and ant bodies) as a PettingZoo ParallelEnv."""

from envs.sumo.sumo_env import SumoEnv, env, parallel_env

__all__ = ["SumoEnv", "env", "parallel_env"]
