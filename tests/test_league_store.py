"""SQLite store and the read-only ratings table."""

import json
import sqlite3
import threading
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from league.ratings import Tally
from league.records import MatchKind, Outcome, PlayerKind, ResultRecord
from league.store import LeagueStore, StoreError
from league.table import ratings_table, render_table


def result(match_id: str, a: str, b: str, outcome: Outcome = Outcome.A_WIN) -> ResultRecord:
    return ResultRecord(match_id, a, b, outcome, a_version=0, kind=MatchKind.EVAL, steps=10)


@pytest.fixture
def store(tmp_path: Path):
    s = LeagueStore(tmp_path / "league.db")
    yield s
    s.close()


def populate(store: LeagueStore) -> None:
    store.add_player("random", PlayerKind.BUILTIN)
    store.add_player("main", PlayerKind.LEARNER, "main")
    store.add_player("main@v1", PlayerKind.SNAPSHOT, "main", 1)
    store.add_player("main@v2", PlayerKind.SNAPSHOT, "main", 2)


def test_durability_pragmas(store: LeagueStore) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_players_are_idempotent_and_ordered(store: LeagueStore) -> None:
    populate(store)
    again, created = store.add_player("main@v1", PlayerKind.SNAPSHOT, "main", 1)
    assert not created and again.version == 1
    kept, created = store.add_player("main", PlayerKind.BUILTIN)
    assert not created and kept.kind == PlayerKind.LEARNER  # the first registration wins
    assert [p.id for p in store.players()] == ["random", "main", "main@v1", "main@v2"]
    assert store.get_player("nobody") is None


def test_results_insert_once(store: LeagueStore) -> None:
    populate(store)
    applied, stored = store.add_result(result("m1", "main@v1", "random"))
    assert applied and stored.outcome == Outcome.A_WIN and stored.created_at > 0
    applied, stored = store.add_result(result("m1", "main@v2", "random", Outcome.DRAW))
    assert not applied and stored.player_a == "main@v1"  # the original stays
    assert store.result_count() == 1
    with pytest.raises(sqlite3.IntegrityError):  # foreign keys are enforced
        store.add_result(result("m2", "ghost", "random"))


def test_a_batch_of_results_is_one_transaction(store: LeagueStore) -> None:
    populate(store)
    store.add_result(result("m0", "main@v1", "random"))
    batch = [
        result("m1", "main@v1", "random"),
        result("m0", "main@v2", "random"),  # stored before: a duplicate
        result("m2", "main@v2", "main@v1", Outcome.DRAW),
        result("m1", "main@v2", "random"),  # repeated within the batch: a duplicate
    ]
    stored = store.add_results(batch)
    assert [applied for applied, _ in stored] == [True, False, True, False]
    assert [r.player_a for _, r in stored] == ["main@v1", "main@v1", "main@v2", "main@v1"]
    assert store.result_count() == 3
    # One bad result (an unknown player) and the whole batch is refused: nothing stored.
    with pytest.raises(sqlite3.IntegrityError):
        store.add_results([result("m3", "main@v1", "random"), result("m4", "ghost", "random")])
    assert store.result_count() == 3
    assert [r.match_id for r in store.results()] == ["m0", "m1", "m2"]


def test_rated_tallies_skip_learner_games(store: LeagueStore) -> None:
    populate(store)
    store.add_result(result("m1", "main@v1", "random"))
    store.add_result(result("m2", "main@v1", "random", Outcome.DRAW))
    store.add_result(result("m3", "random", "main@v1", Outcome.A_WIN))
    store.add_result(result("m4", "main", "random"))  # a learner: not rated
    assert store.rated_tallies() == {
        ("main@v1", "random"): Tally(1, 1, 0),
        ("random", "main@v1"): Tally(1, 0, 0),
    }


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "league.db"
    first = LeagueStore(path)
    populate(first)
    first.add_result(result("m1", "main@v1", "random"))
    players, results = first.players(), first.results()
    first.close()
    second = LeagueStore(path)
    try:
        assert second.players() == players
        assert second.results() == results
    finally:
        second.close()


def test_concurrent_writers_count_each_match_once(store: LeagueStore) -> None:
    populate(store)

    def report(worker: int) -> None:
        for k in range(50):
            # Every id is reported by two workers.
            store.add_result(result(f"m{(worker // 2)}-{k}", "main@v1", "random"))

    threads = [threading.Thread(target=report, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.result_count() == 4 * 50


def test_readonly_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        LeagueStore(tmp_path / "missing.db", readonly=True)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE x (y)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a league database"):
        LeagueStore(other, readonly=True)


def test_table_reads_while_writer_is_open_and_after_close(tmp_path: Path) -> None:
    path = tmp_path / "league.db"
    writer = LeagueStore(path)
    populate(writer)
    for k in range(6):
        writer.add_result(result(f"a{k}", "main@v2", "random"))
        writer.add_result(result(f"b{k}", "main@v2", "main@v1", Outcome.DRAW))
    live = ratings_table(path)
    writer.add_result(result("late", "main@v1", "random"))
    assert sum(r["games"] for r in ratings_table(path)) == sum(r["games"] for r in live) + 2
    writer.close()  # checkpoints and removes the WAL; read-only opening must still work
    rows = ratings_table(path)

    by_id = {r["player"]: r for r in rows}
    assert [r["player"] for r in rows][:3] == ["main@v2", "main@v1", "random"]
    assert by_id["random"]["elo"] == 0.0 and by_id["random"]["rated"]
    assert by_id["main@v2"]["ci_low"] < by_id["main@v2"]["elo"] < by_id["main@v2"]["ci_high"]
    assert (by_id["main@v2"]["wins"], by_id["main@v2"]["draws"]) == (6, 6)
    assert by_id["main"]["rated"] is False and by_id["main"]["elo"] is None
    assert json.loads(json.dumps(rows)) == rows

    out = StringIO()
    Console(file=out, width=120).print(render_table(rows))
    text = out.getvalue()
    for header in ("player", "kind", "version", "elo", "95% interval", "games", "W/D/L"):
        assert header in text
    assert "6/6/0" in text and "unrated" in text
