"""How a seat's actions become its actuator inputs, for many games in one compiled loop."""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from envs.sumo.indexing import AgentIndex

# How a seat's actions become its actuator inputs (`actions_to_inputs`).
COPY, DISC_FORCE, BUG_THRUST = 0, 1, 2


@numba.njit(cache=True, nogil=True)
def actions_to_inputs(
    actions: np.ndarray,
    cos: np.ndarray,
    sin: np.ndarray,
    kinds: np.ndarray,
    width: int,
    take: np.ndarray,
    out: np.ndarray,
) -> None:
    """(N, 2, act_dim) actions -> `out` (N, nu) actuator inputs of N games.

    Actions are clipped to [-1, 1] (NaN stays NaN, as with np.clip) and, per seat `kinds`:
    COPY as they are (ant); DISC_FORCE: a disc's (x, y) force turned from the agent's frame
    to the world, (c x - s y, s x + c y); BUG_THRUST: a bug's (thrust, turn) becomes
    (thrust c, thrust s, turn) for its (force x, force y, turn) motors; c, s = `cos`, `sin`
    (N, 2) of the heading the agent last observed. The seats' inputs are laid out `width`
    apart and `take` (nu,) picks each actuator's input. In float64 whatever the actions'
    type."""
    inputs = np.zeros(2 * width)
    n_act = actions.shape[2]
    for i in range(actions.shape[0]):
        for s in range(2):
            base = s * width
            for m in range(n_act):
                v = np.float64(actions[i, s, m])
                if v < -1.0:
                    v = -1.0
                elif v > 1.0:
                    v = 1.0
                inputs[base + m] = v
            c, sn = cos[i, s], sin[i, s]
            if kinds[s] == DISC_FORCE:
                x, y = inputs[base], inputs[base + 1]
                inputs[base] = c * x - sn * y
                inputs[base + 1] = sn * x + c * y
            elif kinds[s] == BUG_THRUST:
                thrust, turn = inputs[base], inputs[base + 1]
                inputs[base] = thrust * c
                inputs[base + 1] = thrust * sn
                inputs[base + 2] = turn
        for u in range(len(take)):
            out[i, u] = inputs[take[u]]


def input_layout(
    bodies: Sequence[str], idx: Sequence[AgentIndex], nu: int
) -> tuple[np.ndarray, int, np.ndarray]:
    """(kinds, width, take) for `actions_to_inputs` in a game of two seats with `bodies`,
    indexed by `idx`, with `nu` actuators per game: an ant's actions drive its motors
    directly, a disc's are a force and a bug's a thrust along the heading it observed.
    Each seat's inputs are laid out `width` apart (a bug's (thrust, turn) become three:
    force x, force y, turn); `take` (nu,) says which input drives each actuator."""
    kinds = np.array(
        [BUG_THRUST if b == "bug" else DISC_FORCE if not i.oriented else COPY
         for b, i in zip(bodies, idx, strict=True)]
    )  # fmt: skip
    act_dim = max(i.num_actions for i in idx)
    width = max(act_dim, 3) if "bug" in bodies else act_dim
    take = np.zeros(nu, np.int64)
    for k, seat in enumerate(idx):
        count = seat.actuators.stop - seat.actuators.start
        take[seat.actuators] = k * width + np.arange(count)
    return kinds, width, take
