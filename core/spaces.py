"""What a policy's ends look like, in terms both an env and a network understand (kept
apart from core/nets.py so that envs can say it without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyShape:
    """Observation size, the number of actions (discrete) or action dimensions
    (continuous), and for goal-conditioned policies the goal's size: they see the
    observation and the goal side by side."""

    obs_dim: int
    num_actions: int
    continuous: bool = False
    goal_dim: int = 0

    @property
    def input_dim(self) -> int:
        """What the network reads: the observation, then the goal."""
        return self.obs_dim + self.goal_dim
