"""The league's side of a rollout worker's games, whatever steps them: who plays each
episode, which chunk track each trained agent fills, and what gets reported.

A worker's games are stepped either one PettingZoo env per game (actors/rollout.py
`GameStepper`) or all in one batched env (actors/vector_rollout.py `VectorStepper`); both
hand this class the same events: an episode starts, a trained agent's transition closes,
an episode ends.

Several learners can share an actor, each with its own policy pool and trajectory stream:
- team games (config env.teams, e.g. predators against prey): one learner lineage per
  team. A training episode belongs to one team in turn: that team's learner plays it,
  the opponent team is played by whatever the league drew from the other lineage (its
  latest learner, whose decisions are then trained on too, one of its snapshots, or
  random);
- exploiters (league.main_exploiters / league_exploiters): every lineage plays the one
  team. The training episodes of a game go to the lineages in turn; the league picks
  each one's opponent by its role (a main exploiter's is the main agent's latest
  learner, trained on too, like a team game's opponent).
Chunk tracks follow the learner, not the seat or the game: each lineage has a pool of
tracks in the actor (actors/chunking.py `TrackPool`), and an agent it trains holds one
from the start of its episode, or from its last chunk boundary, to the end of the
episode or its next chunk boundary, taking the stalest part-filled idle track first.
Why: with a track per seat, or per (game, k-th trained agent), a part-filled chunk
waited through every episode that did not use its track (the learner alternates seats;
games against snapshots train one agent, games against the latest self two, eval games
none) and went stale: the bug job dropped 2% of its chunks for lag with per-seat
tracks and 0.75% with per-game tracks (`benchmarks/latency.py`, BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from actors.chunking import ChunkBuilder, TrackPool
from actors.league_link import LeagueLink, Report
from actors.players import LEARNER, Seat
from actors.rollout_stats import RolloutStats
from actors.seating import Seating, Side
from core.chunks import job_chunk_spec
from core.codec import encode_chunk
from core.config import JobConfig


class VersionSource(Protocol):
    """What a lineage's policy pool tells the episodes: the learner version it acts with."""

    @property
    def learner_version(self) -> int: ...


@dataclass
class Slot:
    index: int  # position in the actor's vector
    game: Any  # a `Game`, or a view of one game of a batched env
    seats: dict[str, Seat] = field(default_factory=dict)  # agent -> who plays it
    # trained agent -> the chunk track it fills now (taken from its lineage's TrackPool)
    track_of: dict[str, ChunkBuilder] = field(default_factory=dict)
    trained: frozenset[str] = frozenset()  # agents whose decisions are training data
    owner: str = ""  # the lineage this training episode belongs to
    match_id: str = ""
    kind: str = "training"
    # (agents, player id) reported as sides a and b of the match
    side_a: Side = ((), "")
    side_b: Side = ((), "")
    steps: int = 0
    episodes: int = 0
    # trained agent -> its return (every reward it got) and decisions so far this episode
    returns: dict[str, float] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)


class Episodes:
    """`games`: the worker's games (anything with `agents`, `team_of`, `teams`,
    `reset(seed)` and `team_outcome(...)`); `pools`: per lineage, its learner version."""

    def __init__(
        self,
        config: JobConfig,
        actor_id: str,
        games: list[Any],
        pools: Mapping[str, VersionSource],
        league: LeagueLink,
        rng: np.random.Generator,
        stats: RolloutStats,
    ) -> None:
        self.config, self.actor_id, self.pools, self.league = config, actor_id, pools, league
        self.rng, self.stats = rng, stats
        learners = config.learners()
        self.lineages = list(learners)
        self.slots = [Slot(i, game) for i, game in enumerate(games)]
        first = games[0]
        self.agents, self.team_of = first.agents, first.team_of
        self.specs = {lineage: first.teams[learning.team] for lineage, learning in learners.items()}
        self.learner_agents = config.env.learner_agents or self.agents
        self._teams = bool(config.env.teams)
        self.seating = Seating(
            self.agents,
            self.lineages,
            self.team_of,
            {lineage: spec.agents for lineage, spec in self.specs.items()},
            self.learner_agents,
            self._teams,
            self.rng,
        )
        self.tracks = self._make_tracks()
        # Per lineage, the per-step chunk fields in the order `record` takes their values.
        self.step_names = {
            lineage: pool.tracks()[0].step_names for lineage, pool in self.tracks.items()
        }
        self._no_obs = {
            lineage: np.zeros(spec.obs_dim, np.float32) for lineage, spec in self.specs.items()
        }
        # Encoded chunks per lineage, waiting for the worker's next write to its stream.
        self.outbox: dict[str, list[bytes]] = {lineage: [] for lineage in self.lineages}

    def _make_tracks(self) -> dict[str, TrackPool]:
        """Per lineage, one chunk track per agent it can play in each game (its team's, in
        team games, or all): as many as its agents can hold at once."""
        config, pools, index = self.config, {}, 0
        for lineage, spec in self.specs.items():
            chunk_spec, stream = job_chunk_spec(config, spec.shape), config.stream_name(lineage)
            tracks = []
            for _ in range(len(self.slots) * len(spec.agents)):
                # env_index numbers tracks, so (actor_id, env_index, sequence) is unique;
                # actor ids carry a fresh suffix per incarnation.
                tracks.append(ChunkBuilder(chunk_spec, stream, self.actor_id, index))
                index += 1
            pools[lineage] = TrackPool(tracks, switch=not config.model.lstm)
        return pools

    def start(self, slot: Slot) -> None:
        """The slot's next episode: a match from the league, seats, chunk tracks."""
        slot.episodes += 1
        slot.steps = 0
        match = None
        if self.rng.random() < self.config.league.eval_fraction:
            match = self.league.eval_match()  # None until two frozen players exist
        if match is not None:
            slot.owner = ""
            plan = self.seating.eval(match)
        else:
            # Lineages (teams, or the main agent and its exploiters) take turns owning
            # the training episodes of a slot; slots start at different turns.
            slot.owner = self.lineages[(slot.index + slot.episodes) % len(self.lineages)]
            match = self.league.training_match(slot.owner)
            plan = self.seating.training(slot.owner, match, slot.episodes)
        slot.seats, slot.side_a, slot.side_b = plan.seats, plan.side_a, plan.side_b
        slot.trained = frozenset(a for a, seat in slot.seats.items() if seat[1] == LEARNER)
        slot.returns = dict.fromkeys(slot.trained, 0.0)
        slot.decisions = dict.fromkeys(slot.trained, 0)
        slot.track_of = {
            agent: self.tracks[slot.seats[agent][0]].take()
            for agent in self.agents
            if agent in slot.trained
        }
        slot.match_id, slot.kind = match.match_id, match.kind
        slot.game.reset(seed=int(self.rng.integers(2**31)))

    def record(
        self,
        slot: Slot,
        agent: str,
        values: Sequence[Any],
        next_obs: np.ndarray | None,
        state: np.ndarray | None = None,
    ) -> None:
        """One closed transition of trained `agent`: its decision and the reward it got
        until it acted again (`next_obs` is what it then saw) or the episode ended
        (`next_obs` None; "dones" is then True), as values in `step_names` order; `state`:
        a recurrent policy's state before the decision. A chunk that fills up goes to
        the outbox."""
        lineage = slot.seats[agent][0]
        track = slot.track_of[agent]
        if track.empty:
            track.start_state = state
        track.add_row(values)
        self.stats.learner_steps += 1
        if track.full:
            # After a terminal step the bootstrap value is multiplied by 0 anyway.
            bootstrap = next_obs if next_obs is not None else self._no_obs[lineage]
            start = {} if track.start_state is None else {"recurrent_state": track.start_state}
            self.outbox[lineage].append(encode_chunk(track.take(bootstrap, **start)))
            slot.track_of[agent] = self.tracks[lineage].after_chunk(track)

    def finish(self, slot: Slot) -> None:
        """The slot's episode ended (every open transition recorded): tracks back to their
        pools, the result to the league, the trained agents' returns to the stats."""
        for agent, track in slot.track_of.items():
            self.tracks[slot.seats[agent][0]].give_back(track)
        slot.track_of = {}
        (agents_a, player_a), (agents_b, player_b) = slot.side_a, slot.side_b
        scoring = self.config.env.scoring_team
        if scoring is None or not self._teams:
            outcome = slot.game.team_outcome(agents_a, agents_b)
        else:
            scorer_is_a = self.team_of[agents_a[0]] == scoring
            outcome = slot.game.team_outcome(agents_a, agents_b, "a" if scorer_is_a else "b")
        training = slot.kind == "training"
        self.league.report(
            Report(
                slot.match_id,
                player_a,
                player_b,
                outcome,
                a_version=self.pools[slot.owner].learner_version if training else 0,
                kind=slot.kind,
                steps=slot.steps,
            )
        )
        self.stats.games += 1
        self.stats.eval_games += not training
        if training:
            for agent in slot.trained:
                self.stats.tally_episode(
                    slot.seats[agent][0], slot.returns[agent], slot.decisions[agent]
                )
