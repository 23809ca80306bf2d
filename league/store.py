"""SQLite persistence for players and match results.

Durability choice: WAL journal with `synchronous=FULL`. A client treats an
acknowledged ReportResult as done and never resends it, so an acknowledged
result must survive a power loss too; under WAL, NORMAL would only survive a
process crash. The cost is one fsync per write transaction: a batch of results
(ReportResults) is one transaction, since one fsync per result kept the league's thread
busy at a connect_four actor's ~250 games/s (a third of a core in the driver).

One connection guarded by a lock serves the gRPC thread pool: writes are
serialised by SQLite anyway, and one connection keeps it simple. Readers in
other processes (`league table`) open the file read-only; WAL lets them read
while the service writes.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from core.players import Role
from league.ratings import Tally
from league.records import (
    FROZEN_KINDS,
    EvaluationRecord,
    MatchKind,
    Outcome,
    PlayerKind,
    PlayerRecord,
    ResultRecord,
)

SCHEMA_VERSION = 1

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS players (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('learner', 'snapshot', 'builtin')),
    lineage    TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 0),
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    match_id   TEXT PRIMARY KEY,
    player_a   TEXT NOT NULL REFERENCES players(id),
    player_b   TEXT NOT NULL REFERENCES players(id),
    outcome    TEXT NOT NULL CHECK (outcome IN ('a_win', 'b_win', 'draw')),
    a_version  INTEGER NOT NULL CHECK (a_version >= 0),
    kind       TEXT NOT NULL CHECK (kind IN ('training', 'eval')),
    steps      INTEGER NOT NULL CHECK (steps >= 0),
    created_at REAL NOT NULL
);
-- The role of each learner lineage (records.Role); its snapshots share it. A table of
-- its own, so databases from before roles existed gain it without a migration.
CREATE TABLE IF NOT EXISTS roles (
    lineage TEXT PRIMARY KEY REFERENCES players(id),
    role    TEXT NOT NULL CHECK (role IN ('main', 'main_exploiter', 'league_exploiter'))
);
-- Goal jobs' greedy evaluation episodes (no opponent, so no result rows); a table of its
-- own, which older databases gain when the service opens them.
CREATE TABLE IF NOT EXISTS evaluations (
    episode_id    TEXT PRIMARY KEY,
    player        TEXT NOT NULL REFERENCES players(id),
    version       INTEGER NOT NULL CHECK (version >= 0),
    steps_trained INTEGER NOT NULL CHECK (steps_trained >= 0),
    success       INTEGER NOT NULL CHECK (success IN (0, 1)),
    created_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_pair ON results (player_a, player_b);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
"""

_FROZEN_SQL = ", ".join(f"'{k.value}'" for k in sorted(FROZEN_KINDS))


class StoreError(RuntimeError):
    """The database cannot be used (missing, wrong schema, unreadable)."""


class LeagueStore:
    """Players and results in one SQLite file. Safe to share between threads."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        self._conn = self._connect()
        # Player rows are never updated or deleted, so a record once read stays true: the
        # service looks up both players of every reported result, and four SQL queries
        # per result were a good part of the league's CPU per game.
        self._known_players: dict[str, PlayerRecord] = {}

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            if not self.path.is_file():
                raise StoreError(f"league database {self.path} does not exist")
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we open transactions explicitly, so a
            # statement is never left inside an implicit one.
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(f"BEGIN;{_SCHEMA}COMMIT;")
        # Another writer (a second process on the same file) waits instead of failing.
        conn.execute("PRAGMA busy_timeout=5000")
        self._check_schema(conn)
        # A database written before roles existed, opened read-only, has no roles table:
        # every learner there is a main agent.
        has_roles = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'roles'"
        ).fetchone()
        self._players_sql = _PLAYERS_SQL if has_roles else _PLAYERS_SQL_NO_ROLES
        return conn

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a league database: {exc}") from exc
        if row is None or int(row[0]) != SCHEMA_VERSION:
            found = None if row is None else row[0]
            raise StoreError(
                f"{self.path} has league schema version {found}, expected {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- players -----------------------------------------------------------

    def add_player(
        self,
        player_id: str,
        kind: PlayerKind,
        lineage: str = "",
        version: int = 0,
        role: Role = Role.MAIN,
    ) -> tuple[PlayerRecord, bool]:
        """Inserts the player unless the id exists; returns (stored record, created).
        `role` is stored for a new LEARNER (its lineage's role) and ignored otherwise."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self._conn.execute(
                    "INSERT OR IGNORE INTO players (id, kind, lineage, version, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (player_id, kind.value, lineage, version, time.time()),
                )
                created = cur.rowcount == 1
                if created and kind == PlayerKind.LEARNER:
                    self._conn.execute(
                        "INSERT OR IGNORE INTO roles (lineage, role) VALUES (?, ?)",
                        (player_id, (role or Role.MAIN).value),
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            row = self._conn.execute(self._players_sql + " WHERE p.id = ?", (player_id,)).fetchone()
        record = self._known_players[player_id] = _player(row)
        return record, created

    def get_player(self, player_id: str) -> PlayerRecord | None:
        known = self._known_players.get(player_id)
        if known is not None:
            return known
        with self._lock:
            row = self._conn.execute(self._players_sql + " WHERE p.id = ?", (player_id,)).fetchone()
        if row is None:
            return None  # not cached: another process may register it later
        record = self._known_players[player_id] = _player(row)
        return record

    def players(self) -> list[PlayerRecord]:
        """All players in registration order (oldest first)."""
        with self._lock:
            rows = self._conn.execute(self._players_sql + " ORDER BY p.rowid").fetchall()
        return [_player(r) for r in rows]

    # -- results -----------------------------------------------------------

    def add_result(self, result: ResultRecord) -> tuple[bool, ResultRecord]:
        """Stores the result unless its match id exists; returns (applied, stored record)."""
        return self.add_results([result])[0]

    def add_results(self, results: Sequence[ResultRecord]) -> list[tuple[bool, ResultRecord]]:
        """`add_result` of each, in order, in one transaction (all stored or none); a
        match id repeated within the batch is applied once, its repeats are duplicates."""
        out = []
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                for result in results:
                    cur = self._conn.execute(
                        "INSERT OR IGNORE INTO results (match_id, player_a, player_b, "
                        "outcome, a_version, kind, steps, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            result.match_id,
                            result.player_a,
                            result.player_b,
                            result.outcome.value,
                            result.a_version,
                            result.kind.value,
                            result.steps,
                            now,
                        ),
                    )
                    if cur.rowcount == 1:  # stored as given
                        out.append((True, dataclasses.replace(result, created_at=now)))
                        continue
                    row = self._conn.execute(
                        "SELECT match_id, player_a, player_b, outcome, a_version, kind, "
                        "steps, created_at FROM results WHERE match_id = ?",
                        (result.match_id,),
                    ).fetchone()
                    out.append((False, _result(row)))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return out

    def add_evaluations(self, episodes: Sequence[EvaluationRecord]) -> int:
        """Stores each episode once (by episode id), all in one transaction; returns how
        many were new."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                now, added = time.time(), 0
                for e in episodes:
                    cur = self._conn.execute(
                        "INSERT OR IGNORE INTO evaluations (episode_id, player, version, "
                        "steps_trained, success, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (e.episode_id, e.player, e.version, e.steps_trained, int(e.success), now),
                    )
                    added += cur.rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return added

    def evaluations(self) -> list[EvaluationRecord]:
        """Every evaluation episode, in the order of the steps trained before it was
        played (none from a database written before goal jobs existed)."""
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT episode_id, player, version, steps_trained, success, created_at "
                    "FROM evaluations ORDER BY steps_trained, created_at"
                ).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):  # read-only view of an older database
                    return []
                raise
        return [EvaluationRecord(r[0], r[1], int(r[2]), int(r[3]), bool(r[4]), r[5]) for r in rows]

    def results(self, start: int = 0) -> list[ResultRecord]:
        """All results in arrival order, from the `start`-th (0-based) on.

        Results are never deleted, so the first `start` rows stay the same ones: a
        reader that folds results in order can fetch only those it has not seen.
        """
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        with self._lock:
            rows = self._conn.execute(
                "SELECT match_id, player_a, player_b, outcome, a_version, kind, steps, "
                "created_at FROM results ORDER BY rowid LIMIT -1 OFFSET ?",
                (start,),
            ).fetchall()
        return [_result(r) for r in rows]

    def results_after(self, rowid: int = 0) -> list[tuple[int, ResultRecord]]:
        """Results stored after `rowid`, in arrival order, each with its rowid.

        Results are only ever appended, so a reader that polls (the dashboard) can
        follow the table by passing the last rowid it saw instead of rereading it all.
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT rowid, match_id, player_a, player_b, outcome, a_version, kind, steps, "
                "created_at FROM results WHERE rowid > ? ORDER BY rowid",
                (rowid,),
            ).fetchall()
        return [(int(r[0]), _result(r[1:])) for r in rows]

    def result_count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def rated_tallies(self) -> dict[tuple[str, str], Tally]:
        """Per ordered pair W/D/L of games where both sides are frozen players.

        Aggregated in SQL so a rating refresh costs O(pairs), not O(games).
        """
        with self._lock:
            rows = self._conn.execute(
                f"""
                SELECT r.player_a, r.player_b,
                       SUM(r.outcome = 'a_win'), SUM(r.outcome = 'draw'),
                       SUM(r.outcome = 'b_win')
                FROM results r
                JOIN players pa ON pa.id = r.player_a
                JOIN players pb ON pb.id = r.player_b
                WHERE pa.kind IN ({_FROZEN_SQL}) AND pb.kind IN ({_FROZEN_SQL})
                GROUP BY r.player_a, r.player_b
                """
            ).fetchall()
        return {(a, b): Tally(int(w), int(d), int(lo)) for a, b, w, d, lo in rows}


_PLAYERS_SQL = (
    "SELECT p.id, p.kind, p.lineage, p.version, p.created_at, COALESCE(r.role, '') "
    "FROM players p LEFT JOIN roles r ON r.lineage = p.lineage"
)
_PLAYERS_SQL_NO_ROLES = "SELECT p.id, p.kind, p.lineage, p.version, p.created_at, '' FROM players p"


def _player(row: tuple) -> PlayerRecord:
    pid, kind, lineage, version, created_at, role = row
    kind = PlayerKind(kind)
    # Learners stored before roles existed are main agents; builtins have no role.
    if kind != PlayerKind.BUILTIN and not role:
        role = Role.MAIN
    return PlayerRecord(pid, kind, lineage, int(version), float(created_at), Role(role))


def _result(row: tuple) -> ResultRecord:
    match_id, a, b, outcome, a_version, kind, steps, created_at = row
    return ResultRecord(
        match_id,
        a,
        b,
        Outcome(outcome),
        int(a_version),
        MatchKind(kind),
        int(steps),
        float(created_at),
    )
