"""Player naming, in one place: roles, snapshot ids, and the names of a lineage's
resources (trajectory stream, checkpoint file, TensorBoard folder).

A lineage is one learner's line of players: its latest weights ("main") and the snapshots
frozen from it ("main@v50"). The main agent of a single-team job keeps the job's bare
names (stream `traj:{job}`, `learner.safetensors`, `tb/`), which predate teams and
exploiters; every other lineage's names carry the lineage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a learner lineage is for (AlphaStar's league); frozen players inherit their
    lineage's role. Builtins have none (""): they are nobody's learner."""

    MAIN = "main"  # the agent the job is for: self-play plus PFSP over the whole league
    MAIN_EXPLOITER = "main_exploiter"  # beats the current main agents; reset after snapshot
    LEAGUE_EXPLOITER = "league_exploiter"  # PFSP over everyone frozen; finds league-wide holes
    NONE = ""


# The uniform-random player: every league has it, and it anchors Elo at 0.
RANDOM = "random"

# Registered names exclude "@", so a name can never collide with a snapshot id.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SNAPSHOT_RE = re.compile(r"(.+)@v(\d+)")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a player name (a learner's or a builtin's), or None."""
    if _NAME_RE.fullmatch(name):
        return None
    return (
        f"invalid player name {name!r}: use 1-64 characters of [A-Za-z0-9_.-], "
        "starting with a letter or digit"
    )


def snapshot_id(lineage: str, version: int) -> str:
    """The league player frozen from `lineage` at weight version `version`."""
    return f"{lineage}@v{version}"


def parse_snapshot_id(player_id: str) -> tuple[str, int] | None:
    """ "main@v50" -> ("main", 50); None for a player that is no snapshot."""
    match = _SNAPSHOT_RE.fullmatch(player_id)
    return (match.group(1), int(match.group(2))) if match else None


def lineage_of(player_id: str) -> str:
    """The lineage a player belongs to: a snapshot's, else its own id."""
    parsed = parse_snapshot_id(player_id)
    return parsed[0] if parsed else player_id


@dataclass(frozen=True)
class LineageNames:
    """Where a job's lineages keep their things (JobConfig.names())."""

    job: str
    main: str  # league.learner_player
    teams: bool  # env.teams: every lineage is a team, none keeps the bare names

    def bare(self, lineage: str) -> bool:
        return not self.teams and lineage == self.main

    def stream(self, lineage: str) -> str:
        """The trajectory stream (and the chunks' job field) of a lineage's learner."""
        return self.job if self.bare(lineage) else f"{self.job}-{lineage}"

    def checkpoint_file(self, lineage: str) -> str:
        return "learner.safetensors" if self.bare(lineage) else f"learner-{lineage}.safetensors"

    def tensorboard_dir(self, lineage: str) -> str:
        """Under the run dir's tb/: "" for the bare main agent."""
        return "" if self.bare(lineage) else lineage
