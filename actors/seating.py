"""Who plays which agent of a game in one episode: a rollout worker's seat plans.

A seat is (lineage, player): the lineage whose policy pool holds the player, and either
LEARNER (that lineage's latest weights, whose decisions become training data) or a
frozen player's id (a snapshot or a builtin). A plan also names the agents and player
id of each side of the match, as the result is reported to the league.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from actors.players import LEARNER, Seat
from core.league_protocol import Match
from core.players import lineage_of, parse_snapshot_id

Side = tuple[tuple[str, ...], str]  # (agents, player id) of one side of a match


@dataclass(frozen=True)
class SeatPlan:
    seats: dict[str, Seat]  # agent -> who plays it
    side_a: Side
    side_b: Side


class Seating:
    """Seat plans for the games of one worker.

    `lineages`: the job's learning lineages (one per team in team games, else the main
    agent and any exploiters); `team_agents`: each lineage's team's agents; `teams`: a
    team game (agents belong to teams by `team_of`), else every lineage plays every agent
    and the learner's own agent rotates through `learner_agents`. `rng` draws the sides
    of evaluation games (the worker's generator: one stream of draws per worker).
    """

    def __init__(
        self,
        agents: Sequence[str],
        lineages: Sequence[str],
        team_of: Mapping[str, str],
        team_agents: Mapping[str, tuple[str, ...]],
        learner_agents: Sequence[str],
        teams: bool,
        rng: np.random.Generator,
    ) -> None:
        self.agents, self.lineages = list(agents), list(lineages)
        self.team_of, self.team_agents = dict(team_of), dict(team_agents)
        self.learner_agents, self.teams, self.rng = list(learner_agents), teams, rng

    def lineage_of(self, player: str) -> str:
        """The lineage whose policy pool holds `player`: a learner lineage's id is its own,
        a snapshot "{lineage}@v{n}" belongs to its lineage, builtins to any (the first)."""
        lineage = lineage_of(player)
        if lineage in self.lineages:
            return lineage
        if parse_snapshot_id(player) is not None:
            raise KeyError(f"snapshot {player!r} belongs to no learner of this job")
        return self.lineages[0]

    def eval(self, match: Match) -> SeatPlan:
        """Two frozen players, nobody trained."""
        if not self.teams:
            # Random sides, so neither frozen player always has the same seat.
            a, b = self.agents[0], self.agents[1]
            if self.rng.random() < 0.5:
                a, b = b, a
            seats = {
                a: (self.lineage_of(match.player_a), match.player_a),
                b: (self.lineage_of(match.player_b), match.player_b),
            }
            return SeatPlan(seats, ((a,), match.player_a), ((b,), match.player_b))
        team_a, team_b = self.lineages
        seats = {
            agent: (team, match.player_a if team == team_a else match.player_b)
            for agent, team in self.team_of.items()
        }
        return SeatPlan(
            seats,
            (self.team_agents[team_a], match.player_a),
            (self.team_agents[team_b], match.player_b),
        )

    def training(self, lineage: str, match: Match, episode: int) -> SeatPlan:
        """`lineage`'s learner against the league's pick (`match.player_b`) in the given
        episode of a game."""
        if self.teams:
            other = next(t for t in self.lineages if t != lineage)
            # The other team's lineage id stands for its latest learner: trained on too.
            opponent = LEARNER if match.player_b == other else match.player_b
            seats = {
                agent: (team, LEARNER if team == lineage else opponent)
                for agent, team in self.team_of.items()
            }
            return SeatPlan(
                seats,
                (self.team_agents[lineage], lineage),
                (self.team_agents[other], match.player_b),
            )
        # Alternate seats per game so the learner plays every seat equally often.
        me = self.learner_agents[episode % len(self.learner_agents)]
        opponent = match.player_b
        # Another lineage's id (a main exploiter's opponent) is its latest learner.
        them = (
            (opponent, LEARNER)
            if opponent in self.lineages
            else (self.lineage_of(opponent), opponent)
        )
        seats = {a: (lineage, LEARNER) if a == me else them for a in self.agents}
        other = next(a for a in self.agents if a != me)
        return SeatPlan(seats, ((me,), lineage), ((other,), match.player_b))
