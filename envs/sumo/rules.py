"""Sumo rules as pure functions: who won, and the dense shaping reward.

Kept free of MuJoCo so the rules can be unit-tested and read on their own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    winner: int | None  # agent index, or None for a draw
    reason: str
    loser: int | None = None  # set also when a draw has a culprit (left the ring alone)


@dataclass(frozen=True)
class ShapingWeights:
    """Per-step dense reward scales, chosen so an episode's shaping total stays O(1),
    comparable to the sparse +-1, before annealing."""

    approach: float = 0.5  # per metre the gap to the opponent shrinks
    push: float = 1.0  # per metre the opponent moves away from the ring centre
    upright: float = 0.002  # per step, times the torso's up-axis z component (ant only)


def judge(out: tuple[bool, bool], fallen: tuple[bool, bool], touched: bool) -> Outcome | None:
    """Decide the episode, or None if it goes on.

    A winner must have earned it: if the agents never touched, whoever left the ring or fell
    did it alone. That agent still loses (so running out is never a free way to end an
    episode), but the other does not win, so a passive policy cannot win by waiting for the
    opponent to blunder; the match counts as a draw.
    """
    lost = (out[0] or fallen[0], out[1] or fallen[1])
    if not any(lost):
        return None
    if all(lost):
        return Outcome(None, "both_lost")
    loser = 0 if lost[0] else 1
    why = "out_of_ring" if out[loser] else "fell"
    if not touched:
        return Outcome(None, f"{why}_without_contact", loser)
    return Outcome(1 - loser, why, loser)


def sparse_rewards(outcome: Outcome, draw_reward: float) -> tuple[float, float]:
    """+1 to a winner, -1 to a loser (also one who lost alone), `draw_reward` otherwise."""
    rewards = [draw_reward, draw_reward]
    if outcome.winner is not None:
        rewards[outcome.winner] = 1.0
    if outcome.loser is not None:
        rewards[outcome.loser] = -1.0
    return rewards[0], rewards[1]


def shaping_weight(total_steps: int, shaping_steps: int) -> float:
    """Linear anneal from 1 to 0 over `shaping_steps` env steps (0 disables shaping)."""
    if shaping_steps <= 0:
        return 0.0
    return max(0.0, 1.0 - total_steps / shaping_steps)


def shaping_terms(
    w: ShapingWeights,
    gap_before: float,
    gap_after: float,
    opp_radius_before: float,
    opp_radius_after: float,
    up_z: float | None,
) -> dict[str, float]:
    """Unannealed dense terms for one agent; `up_z` is None for bodies that cannot fall."""
    return {
        "approach": w.approach * (gap_before - gap_after),
        "push": float(w.push * (opp_radius_after - opp_radius_before)),
        "upright": 0.0 if up_z is None else w.upright * up_z,
    }
