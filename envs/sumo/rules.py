"""Sumo rules as pure functions: who won, and the dense shaping reward.

Kept free of MuJoCo so the rules can be unit-tested and read on their own. Every rule is
written once, for one game, as a compiled (numba) function: `SumoVector` calls them from its
own compiled loop over all its games (envs/sumo/vector.py, `_score_games`), and the array
spellings below (`judge_batch`, `shaping_terms`, ...) loop over them for tests and readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np

# Reason codes of `Verdicts.reason`; the names are what the env reports in `info["reason"]`.
ONGOING, OUT_OF_RING, FELL, OUT_ALONE, FELL_ALONE, BOTH_LOST, TIME_LIMIT = range(7)
REASONS = (
    "",
    "out_of_ring",
    "fell",
    "out_of_ring_without_contact",
    "fell_without_contact",
    "both_lost",
    "time_limit",
)
_ALONE = OUT_ALONE - OUT_OF_RING  # offset from "lost to the opponent" to "lost alone"


@dataclass(frozen=True)
class Outcome:
    winner: int | None  # agent index, or None for a draw
    reason: str
    loser: int | None = None  # set also when a draw has a culprit (left the ring alone)


class Verdicts(NamedTuple):
    """One row per game; winner and loser are agent indices, -1 for none."""

    reason: np.ndarray  # int8 code into REASONS; ONGOING while the game goes on
    winner: np.ndarray  # int8
    loser: np.ndarray  # int8


@dataclass(frozen=True)
class ShapingWeights:
    """Per-step dense reward scales, chosen so an episode's shaping total stays O(1),
    comparable to the sparse +-1, before annealing."""

    approach: float = 0.5  # per metre the agent's own move closes the gap to the opponent
    push: float = 1.0  # per metre the opponent gains on you towards the edge
    upright: float = 0.002  # per step, times the torso's up-axis z component (ant only)

    def as_tuple(self) -> tuple[float, float, float]:
        """(approach, push, upright), as the compiled `shaping` takes them."""
        return (float(self.approach), float(self.push), float(self.upright))


@numba.njit(cache=True, nogil=True)
def verdict(out0: bool, out1: bool, fallen0: bool, fallen1: bool, touched: bool) -> tuple:
    """One game: (reason code, winner, loser), agent indices or -1.

    A winner must have earned it: if the agents never touched, whoever left the ring or fell
    did it alone. That agent still loses (so running out is never a free way to end an
    episode), but the other does not win, so a passive policy cannot win by waiting for the
    opponent to blunder; the match counts as a draw.
    """
    lost0, lost1 = out0 or fallen0, out1 or fallen1
    if not (lost0 or lost1):
        return ONGOING, -1, -1
    if lost0 and lost1:
        return BOTH_LOST, -1, -1
    loser = 0 if lost0 else 1
    why = OUT_OF_RING if (out0 if lost0 else out1) else FELL
    if not touched:
        return why + _ALONE, -1, loser
    return why, 1 - loser, loser


@numba.njit(cache=True, nogil=True)
def sparse_reward(winner: int, loser: int, seat: int, draw_reward: float) -> float:
    """+1 to a winner, -1 to a loser (also one who lost alone), `draw_reward` otherwise.
    Only meaningful for a finished game."""
    if seat == winner:
        return 1.0
    if seat == loser:
        return -1.0
    return draw_reward


@numba.njit(cache=True, nogil=True)
def anneal(total_steps: int, shaping_steps: int) -> float:
    """The shaping weight: linear from 1 to 0 over `shaping_steps` env steps (0 disables)."""
    if shaping_steps <= 0:
        return 0.0
    return max(0.0, 1.0 - total_steps / shaping_steps)


@numba.njit(cache=True, nogil=True)
def shaping(
    w: tuple,
    xy_before: np.ndarray,
    xy_after: np.ndarray,
    radius_before: np.ndarray,
    radius_after: np.ndarray,
    up_z: np.ndarray,
    out: np.ndarray,
) -> None:
    """Unannealed dense terms of one game into `out` (3 terms, 2 agents).

    `w` = (approach, push, upright) of ShapingWeights; `xy_*` (2, 2) each agent's torso
    (x, y); `radius_*` (2,) each agent's distance from the ring centre; `up_z` (2,) the
    torso's up-axis z component, 0 for bodies that cannot fall (their upright term is 0).

    "approach" pays an agent for the gap its *own* move closed: the distance from where the
    opponent was to where the agent was, minus to where it is now. Paying both for the gap
    shrinking paid a waiting agent for its opponent's approach, and waiting is what bugs
    learned (BENCHMARKS.md, "sumo with two bugs").
    "push" pays for the opponent getting nearer the edge *than you*: the change of
    (opponent's radius - own radius). Paying for the opponent's radius alone rewarded two
    discs drifting out together, the pusher first (a loss that shaping made look fine).
    """
    for s in range(2):
        o = 1 - s
        ox, oy = xy_before[o, 0], xy_before[o, 1]
        bx, by = ox - xy_before[s, 0], oy - xy_before[s, 1]
        ax, ay = ox - xy_after[s, 0], oy - xy_after[s, 1]
        out[0, s] = w[0] * (np.sqrt(bx * bx + by * by) - np.sqrt(ax * ax + ay * ay))
        lead_before = radius_before[o] - radius_before[s]
        lead_after = radius_after[o] - radius_after[s]
        out[1, s] = w[1] * (lead_after - lead_before)
        out[2, s] = w[2] * up_z[s]


# Array spellings of the rules above, for tests and readers (SumoVector calls the one-game
# functions from its own compiled loop).


def judge_batch(out: np.ndarray, fallen: np.ndarray, touched: np.ndarray) -> Verdicts:
    """`verdict` of n games: `out`, `fallen` are (n, 2) bools per agent, `touched` (n,)."""
    out, fallen = np.asarray(out, bool), np.asarray(fallen, bool)
    n = len(out)
    v = Verdicts(np.empty(n, np.int8), np.empty(n, np.int8), np.empty(n, np.int8))
    _judge_all(out, fallen, np.asarray(touched, bool), *v)
    return v


@numba.njit(cache=True, nogil=True)
def _judge_all(out, fallen, touched, reason, winner, loser):  # noqa: ANN001, ANN202
    for i in range(len(out)):
        reason[i], winner[i], loser[i] = verdict(
            out[i, 0], out[i, 1], fallen[i, 0], fallen[i, 1], touched[i]
        )


def judge(out: tuple[bool, bool], fallen: tuple[bool, bool], touched: bool) -> Outcome | None:
    """`verdict` as an Outcome, or None if the game goes on."""
    reason, winner, loser = verdict(out[0], out[1], fallen[0], fallen[1], touched)
    if reason == ONGOING:
        return None
    return Outcome(None if winner < 0 else winner, REASONS[reason], None if loser < 0 else loser)


def sparse_rewards_batch(winner: np.ndarray, loser: np.ndarray, draw_reward: float) -> np.ndarray:
    """(n, 2) `sparse_reward` of n finished games."""
    pairs = zip(winner, loser, strict=True)
    rows = [[sparse_reward(w, lo, s, draw_reward) for s in (0, 1)] for w, lo in pairs]
    return np.array(rows).reshape(len(winner), 2)


def shaping_weight(total_steps: int | np.ndarray, shaping_steps: int) -> float | np.ndarray:
    """`anneal`, elementwise over an array of per-game step counts."""
    t = np.asarray(total_steps)
    w = np.array([anneal(int(k), shaping_steps) for k in t.ravel()]).reshape(t.shape)
    return float(w) if w.ndim == 0 else w


def shaping_terms(
    w: ShapingWeights,
    xy_before: np.ndarray,
    xy_after: np.ndarray,
    radius_before: np.ndarray,
    radius_after: np.ndarray,
    up_z: np.ndarray,
) -> dict[str, np.ndarray]:
    """`shaping` of n games: `xy_*` (n, 2, 2), `radius_*` and `up_z` (n, 2); (n, 2) per
    term."""
    n = len(xy_before)
    terms = np.empty((n, 3, 2))
    f64 = np.float64
    for i in range(n):
        shaping(
            w.as_tuple(),
            np.asarray(xy_before[i], f64),
            np.asarray(xy_after[i], f64),
            np.asarray(radius_before[i], f64),
            np.asarray(radius_after[i], f64),
            np.asarray(up_z[i], f64),
            terms[i],
        )
    return {name: terms[:, k] for k, name in enumerate(("approach", "push", "upright"))}
