"""Sumo rules as pure functions: who won, and the dense shaping reward.

Kept free of MuJoCo so the rules can be unit-tested and read on their own. Every rule is
written once, over numpy arrays with one row per game (the batched env, `SumoVector`, judges
all its games in one call); `judge` is the one-game spelling of `judge_batch`, for tests and
readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

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

    approach: float = 0.5  # per metre the gap to the opponent shrinks
    push: float = 1.0  # per metre the opponent gains on you towards the edge
    upright: float = 0.002  # per step, times the torso's up-axis z component (ant only)


def judge_batch(out: np.ndarray, fallen: np.ndarray, touched: np.ndarray) -> Verdicts:
    """Decide each game: `out`, `fallen` are (n, 2) bools per agent, `touched` (n,).

    A winner must have earned it: if the agents never touched, whoever left the ring or fell
    did it alone. That agent still loses (so running out is never a free way to end an
    episode), but the other does not win, so a passive policy cannot win by waiting for the
    opponent to blunder; the match counts as a draw.
    """
    out = np.asarray(out, bool)
    lost = out | np.asarray(fallen, bool)
    if not np.count_nonzero(lost):  # the common case, kept cheap: every game goes on
        none = np.zeros(len(lost), np.int8)
        return Verdicts(none, none - 1, none - 1)
    touched = np.asarray(touched, bool)
    both = lost[:, 0] & lost[:, 1]
    single = lost[:, 0] ^ lost[:, 1]
    loser = np.where(lost[:, 0], 0, 1)
    loser_out = np.where(loser == 0, out[:, 0], out[:, 1])
    why = np.where(loser_out, OUT_OF_RING, FELL) + np.where(touched, 0, _ALONE)
    reason = np.where(both, BOTH_LOST, np.where(single, why, ONGOING)).astype(np.int8)
    winner = np.where(single & touched, 1 - loser, -1).astype(np.int8)
    return Verdicts(reason, winner, np.where(single, loser, -1).astype(np.int8))


def judge(out: tuple[bool, bool], fallen: tuple[bool, bool], touched: bool) -> Outcome | None:
    """`judge_batch` for one game: the Outcome, or None if the game goes on."""
    v = judge_batch(np.array([out]), np.array([fallen]), np.array([touched]))
    if v.reason[0] == ONGOING:
        return None
    winner, loser = int(v.winner[0]), int(v.loser[0])
    return Outcome(
        None if winner < 0 else winner, REASONS[v.reason[0]], None if loser < 0 else loser
    )


def sparse_rewards_batch(winner: np.ndarray, loser: np.ndarray, draw_reward: float) -> np.ndarray:
    """(n, 2): +1 to a winner, -1 to a loser (also one who lost alone), `draw_reward` otherwise.

    Only meaningful for finished games (callers mask the rest)."""
    rewards = np.full((len(winner), 2), draw_reward, dtype=np.float64)
    rows = np.arange(len(winner))
    rewards[rows[winner >= 0], winner[winner >= 0]] = 1.0
    rewards[rows[loser >= 0], loser[loser >= 0]] = -1.0
    return rewards


def shaping_weight(total_steps: int | np.ndarray, shaping_steps: int) -> float | np.ndarray:
    """Linear anneal from 1 to 0 over `shaping_steps` env steps (0 disables shaping);
    elementwise over an array of per-game step counts."""
    t = np.asarray(total_steps)
    w = np.zeros(t.shape) if shaping_steps <= 0 else np.maximum(0.0, 1.0 - t / shaping_steps)
    return float(w) if w.ndim == 0 else w


def shaping_terms(
    w: ShapingWeights,
    gap_before: np.ndarray,
    gap_after: np.ndarray,
    radius_before: np.ndarray,
    radius_after: np.ndarray,
    up_z: np.ndarray,
) -> dict[str, np.ndarray]:
    """Unannealed dense terms, (n, 2) each (game, agent).

    `gap_*` are (n,) distances between the torsos; `radius_*` (n, 2) each agent's distance
    from the ring centre; `up_z` (n, 2) is the torso's up-axis z component, 0 for bodies
    that cannot fall (so their upright term is 0).

    "push" pays for the opponent getting nearer the edge *than you*: the change of
    (opponent's radius - own radius). Paying for the opponent's radius alone rewarded two
    discs drifting out together, the pusher first (a loss that shaping made look fine).
    """
    approach = w.approach * (gap_before - gap_after)
    lead_before = radius_before[:, ::-1] - radius_before
    lead_after = radius_after[:, ::-1] - radius_after
    return {
        "approach": approach[:, None] * _BOTH_AGENTS,  # the same for both; x * 1.0 is exact
        "push": w.push * (lead_after - lead_before),
        "upright": w.upright * up_z,
    }


_BOTH_AGENTS = np.ones(2)
