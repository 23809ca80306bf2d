"""A scripted sumo opponent: the "charge" bot, a yardstick stronger than random.

For the disc body the two actuators push along the agent's own frame, so charging is just
pushing straight at the opponent at full force (observation layout in observation.py:
for a disc, [13:15] is the opponent's xy minus our own, in that frame).
"""

from __future__ import annotations

import numpy as np

DISC_OPPONENT_XY = slice(13, 15)


def charge_action(obs: np.ndarray) -> np.ndarray:
    """Full force towards the opponent (disc body)."""
    rel = np.asarray(obs[DISC_OPPONENT_XY], dtype=np.float32)
    norm = float(np.linalg.norm(rel))
    if norm < 1e-6:
        return np.zeros(2, np.float32)
    return rel / norm
