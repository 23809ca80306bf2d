"""What a policy's ends look like, in terms both an env and a network understand (kept
apart from core/nets.py so that envs can say it without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyShape:
    """Observation size, and the number of actions (discrete) or action dimensions
    (continuous)."""

    obs_dim: int
    num_actions: int
    continuous: bool = False
