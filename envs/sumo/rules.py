"""Sumo rules as pure functions: who won, and the dense shaping reward.

Kept free of MuJoCo so the rules can be unit-tested and read on their own. Every rule is
written once, for one game, as a compiled (numba) function: `SumoVector` calls them from its
own compiled loop over all its games (`score_games`, called by envs/sumo/vector.py), and the array
spellings below (`judge_batch`, `shaping_terms`, ...) loop over them for tests and readers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
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
    # Per metre the opponent moves away from the ring centre while the agents touch and it
    # is further out than you: a push that carries both outwards (the ant's way) leaves
    # `push` at ~0. Paid into the "push" term; off by default (configs/sumo_ant.yaml).
    drive: float = 0.0

    @classmethod
    def from_config(cls, value: ShapingWeights | Mapping[str, float] | None) -> ShapingWeights:
        """The weights a config gives (a mapping, e.g. `env.kwargs.shaping: {approach: 2}`;
        unnamed terms keep their defaults), or the defaults for None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"shaping must map term names to weights, got {value!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown shaping terms {unknown}; known: {sorted(known)}")
        weights = {}
        for name, w in value.items():
            if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w):
                raise ValueError(f"shaping weight {name!r} must be a finite number, got {w!r}")
            weights[name] = float(w)
        return cls(**weights)

    def as_tuple(self) -> tuple[float, float, float, float]:
        """(approach, push, upright, drive), as the compiled `shaping` takes them."""
        return (float(self.approach), float(self.push), float(self.upright), float(self.drive))


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
    touching: bool,
    out: np.ndarray,
) -> None:
    """Unannealed dense terms of one game into `out` (3 terms, 2 agents).

    `w` = (approach, push, upright, drive) of ShapingWeights; `xy_*` (2, 2) each agent's
    torso (x, y); `radius_*` (2,) each agent's distance from the ring centre; `up_z` (2,)
    the torso's up-axis z component, 0 for bodies that cannot fall (their upright term is
    0); `touching`: the agents touched before or after the step.

    "approach" pays an agent for the gap its *own* move closed: the distance from where the
    opponent was to where the agent was, minus to where it is now. Paying both for the gap
    shrinking paid a waiting agent for its opponent's approach, and waiting is what bugs
    learned (BENCHMARKS.md, "sumo with two bugs").
    "push" pays for the opponent getting nearer the edge *than you*: the change of
    (opponent's radius - own radius). Paying for the opponent's radius alone rewarded two
    discs drifting out together, the pusher first (a loss that shaping made look fine).
    "drive" adds to "push" the opponent's own move outwards while touching and further out
    than you: pushing an ant carries the pusher out with it, which "push" alone pays ~0.
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
        if touching and radius_after[o] > radius_after[s]:
            out[1, s] += w[3] * (radius_after[o] - radius_before[o])
        out[2, s] = w[2] * up_z[s]


@numba.njit(cache=True, nogil=True)
def score_games(  # noqa: PLR0913 (one loop over the games; SumoVector.step names them)
    done: np.ndarray,
    radial: np.ndarray,
    xy: np.ndarray,
    height: np.ndarray,
    up_z: np.ndarray,
    touching_now: np.ndarray,
    radius: np.ndarray,
    steps: np.ndarray,
    total_steps: np.ndarray,
    max_steps: int,
    fall_height: np.ndarray,
    can_fall: np.ndarray,
    draw_reward: float,
    weights: tuple,
    shaping_steps: int,
    radial_before: np.ndarray,
    xy_before: np.ndarray,
    touching: np.ndarray,
    touched: np.ndarray,
    reason: np.ndarray,
    winner: np.ndarray,
    loser: np.ndarray,
    rewards: np.ndarray,
    terms: np.ndarray,
    alpha: np.ndarray,
    ended: np.ndarray,
    truncated: np.ndarray,
) -> int:
    """Judge and reward every game after a step (the rules above); returns
    how many ended. Inputs are the geometry after the step (`radial`, `xy`, `height`,
    `up_z`, `touching_now`) and before it (`radial_before`, `xy_before`), and the step
    counts already advanced. Writes the per-game flags (`touching`, `touched`) and outcome
    (`reason`, `winner`, `loser`) in place, and fills `rewards`, `terms` (approach, push,
    upright, sparse: each annealed term as rewarded), `alpha` (the anneal weight),
    `ended`, `truncated`. A game that was already `done` keeps its outcome and earns
    nothing."""
    finished = 0
    up = np.empty(2)
    dense = np.empty((3, 2))
    for i in range(len(done)):
        if done[i]:
            rewards[i] = 0.0
            terms[:, i] = 0.0
            alpha[i] = 0.0
            ended[i] = truncated[i] = False
            continue
        a = anneal(total_steps[i] - 1, shaping_steps)  # the count before this step
        alpha[i] = a
        contact = touching[i] or touching_now[i]  # at the end of the last step or this one
        touching[i] = touching_now[i]
        touched[i] = touched[i] or touching_now[i]
        why, win, lose = verdict(
            radial[i, 0] > radius[i],
            radial[i, 1] > radius[i],
            height[i, 0] < fall_height[0],
            height[i, 1] < fall_height[1],
            touched[i],
        )
        end = why != ONGOING
        trunc = not end and steps[i] >= max_steps
        for s in range(2):
            up[s] = up_z[i, s] if can_fall[s] else 0.0
        shaping(weights, xy_before[i], xy[i], radial_before[i], radial[i], up, contact, dense)
        for s in range(2):
            sparse = 0.0
            if end:
                sparse = sparse_reward(win, lose, s, draw_reward)
            elif trunc:
                sparse = draw_reward
            terms[0, i, s] = a * dense[0, s]
            terms[1, i, s] = a * dense[1, s]
            terms[2, i, s] = a * dense[2, s]
            terms[3, i, s] = sparse
            rewards[i, s] = terms[0, i, s] + terms[1, i, s] + terms[2, i, s] + sparse
        reason[i] = TIME_LIMIT if trunc else why
        winner[i], loser[i] = win, lose
        ended[i], truncated[i] = end, trunc
        finished += end or trunc
    return finished


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
    touching: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """`shaping` of n games: `xy_*` (n, 2, 2), `radius_*` and `up_z` (n, 2), `touching`
    (n,) bools (None: no game touches); (n, 2) per term."""
    n = len(xy_before)
    contact = np.zeros(n, bool) if touching is None else np.asarray(touching, bool)
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
            bool(contact[i]),
            terms[i],
        )
    return {name: terms[:, k] for k, name in enumerate(("approach", "push", "upright"))}
