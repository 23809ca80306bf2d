"""LeagueSettings: how the league matches and rates players, checked when built."""

from __future__ import annotations

from dataclasses import dataclass

from league.matchmaking import check_fractions, pfsp_weight
from league.records import name_problem


@dataclass(frozen=True)
class LeagueSettings:
    """How the league matches and rates players.

    `builtins` are created at startup; "random" (uniform random legal moves) is
    the usual rating anchor. `seed` seeds the matchmaker's RNG (None: random).
    """

    self_play_fraction: float = 0.5
    # Share of training games against builtins only (matchmaking.py).
    builtin_fraction: float = 0.0
    anchor: str = "random"
    seed: int | None = None
    builtins: tuple[str, ...] = ("random",)
    # "uniform" | "pfsp_hard" | "pfsp_var" (matchmaking.py); payoff_decay weighs recent
    # games of a pair more (payoff.py).
    opponent_sampling: str = "uniform"
    # How builtin_fraction games pick among the builtins; None: as opponent_sampling.
    builtin_sampling: str | None = None
    pfsp_exponent: float = 2.0
    payoff_decay: float = 0.99
    # What a draw scores for both sides in the win rates PFSP reads (payoff.py).
    draw_score: float = 0.5

    def __post_init__(self) -> None:
        check_fractions(self.self_play_fraction, self.builtin_fraction)
        # Checked here, not only where they are used, so a bad setting fails before the
        # server binds (and `league serve` can answer with a one-line error).
        if not self.pfsp_exponent > 0.0:
            raise ValueError(f"pfsp_exponent must be > 0, got {self.pfsp_exponent}")
        pfsp_weight(self.opponent_sampling, 0.5, self.pfsp_exponent)  # known name?
        if self.builtin_sampling is not None:
            pfsp_weight(self.builtin_sampling, 0.5, self.pfsp_exponent)
        if not 0.0 < self.payoff_decay <= 1.0:
            raise ValueError(f"payoff_decay must be in (0, 1], got {self.payoff_decay}")
        if not 0.0 <= self.draw_score <= 1.0:
            raise ValueError(f"draw_score must be in [0, 1], got {self.draw_score}")
        for name in (self.anchor, *self.builtins):
            problem = name_problem(name)
            if problem:
                raise ValueError(problem)
