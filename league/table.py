"""`selfplay league table`: ratings straight from the league's SQLite file.

Reads the database read-only, so it works while the service runs (WAL readers
never block the writer) and after it has stopped, without a token or a
network round trip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from league.standings import standings
from league.store import LeagueStore


def ratings_table(db_path: str | Path, anchor: str = "random") -> list[dict[str, Any]]:
    """One JSON-ready dict per player: rated players by Elo (best first), then unrated.

    Keys: player, kind, lineage, version, elo, ci_low, ci_high, games, wins,
    draws, losses, rated. elo/ci_low/ci_high are None for unrated players.
    Raises StoreError when the file is missing or not a league database, and
    ValueError when `anchor` is not a player.
    """
    store = LeagueStore(db_path, readonly=True)
    try:
        rows = standings(store, anchor)
    finally:
        store.close()
    table = []
    for s in rows:
        p, r = s.player, s.rating
        table.append(
            {
                "player": p.id,
                "kind": p.kind.value,
                "lineage": p.lineage,
                "version": p.version,
                "elo": r.elo if r.rated else None,
                "ci_low": r.ci_low if r.rated else None,
                "ci_high": r.ci_high if r.rated else None,
                "games": r.games,
                "wins": r.wins,
                "draws": r.draws,
                "losses": r.losses,
                "rated": r.rated,
            }
        )
    return table


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
    for row in rows:
        if row["rated"]:
            elo = f"{round(row['elo'])}"
            interval = f"[{round(row['ci_low'])}, {round(row['ci_high'])}]"
        else:
            elo, interval = "—", "unrated"
        version = str(row["version"]) if row["kind"] == "snapshot" else ""
        table.add_row(
            row["player"],
            row["kind"],
            version,
            elo,
            interval,
            str(row["games"]),
            f"{row['wins']}/{row['draws']}/{row['losses']}",
        )
    return table
