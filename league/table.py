"""`selfplay league table`: ratings straight from the league's SQLite file.

Reads the database read-only, so it works while the service runs (WAL readers
never block the writer) and after it has stopped, without a token or a
network round trip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from league.client import LeagueClient
from league.openskill_ratings import SkillRating, openskill_ratings
from league.standings import rating_fields, standings
from league.store import LeagueStore


def ratings_table(db_path: str | Path, anchor: str = "random") -> list[dict[str, Any]]:
    """One JSON-ready dict per player: rated players by Elo (best first), then unrated.

    Keys: player, kind, lineage, version, elo, ci_low, ci_high, games, wins,
    draws, losses, rated, openskill_mu, openskill_sigma, openskill_ordinal. The
    rating values are None for unrated players.
    Raises StoreError when the file is missing or not a league database, and
    ValueError when `anchor` is not a player.
    """
    store = LeagueStore(db_path, readonly=True)
    try:
        rows = standings(store, anchor)
        skills = openskill_ratings(store.players(), store.results())
    finally:
        store.close()
    table = []
    for s in rows:
        p, r = s.player, s.rating
        skill = skills.get(p.id)
        table.append(
            {
                **rating_fields(p.id, p.kind.value, p.lineage, p.version, r),
                **_skill_fields(skill if r.rated else None),
            }
        )
    return table


def ratings_table_from_service(client: LeagueClient) -> list[dict[str, Any]]:
    """`ratings_table`'s rows from a running league service (GetRatings + ListPlayers)."""
    players = {p.id: p for p in client.players()}
    table = []
    for r in client.ratings():
        p = players.get(r.player_id)  # None only for a player registered in between
        skill = SkillRating(r.player_id, r.openskill_mu, r.openskill_sigma, r.games)
        lineage, version = (p.lineage, p.version) if p else ("", 0)
        table.append(
            {
                **rating_fields(r.player_id, r.kind, lineage, version, r),
                **_skill_fields(skill if r.rated else None),
            }
        )
    return table


def _skill_fields(skill: SkillRating | None) -> dict[str, float | None]:
    if skill is None:
        return {"openskill_mu": None, "openskill_sigma": None, "openskill_ordinal": None}
    return {
        "openskill_mu": skill.mu,
        "openskill_sigma": skill.sigma,
        "openskill_ordinal": skill.ordinal,
    }


def render_table(rows: list[dict[str, Any]], title: str = "League ratings") -> Table:
    """A rich Table of `ratings_table` rows."""
    table = Table(title=title)
    table.add_column("player")
    table.add_column("kind")
    table.add_column("version", justify="right")
    table.add_column("elo", justify="right")
    table.add_column("95% interval", justify="right")
    table.add_column("games", justify="right")
    table.add_column("W/D/L", justify="right")
    # Sequential, so order-dependent (openskill_ratings.py); Elo stays the headline.
    table.add_column("openskill μ±σ", justify="right")
    for row in rows:
        if row["rated"]:
            elo = f"{round(row['elo'])}"
            interval = f"[{round(row['ci_low'])}, {round(row['ci_high'])}]"
        else:
            elo, interval = "—", "unrated"
        if row.get("openskill_mu") is not None:
            skill = f"{row['openskill_mu']:.1f}±{row['openskill_sigma']:.1f}"
        else:
            skill = "—"
        version = str(row["version"]) if row["kind"] == "snapshot" else ""
        table.add_row(
            row["player"],
            row["kind"],
            version,
            elo,
            interval,
            str(row["games"]),
            f"{row['wins']}/{row['draws']}/{row['losses']}",
            skill,
        )
    return table
