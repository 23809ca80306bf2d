"""GetPayoff, GetRatingHistory and OpenSkill in GetRatings on a real league server, and
`selfplay league table|payoff|history|serve` as a user runs them (subprocesses), against a
run dir and against the live service."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from core.config import LeagueSettings
from league import league_pb2 as pb
from league import league_pb2_grpc
from league.client import LeagueClient
from league.openskill_ratings import openskill_ratings
from league.ratings import fit, tally_results
from league.records import MatchKind, Outcome, PlayerKind, ResultRecord, score_of
from league.server import LeagueServer
from league.store import LeagueStore
from league.views import payoff_from_db

TOKEN = "views-token-42"
DECAY = 0.9
SELFPLAY = Path(sys.executable).parent / "selfplay"

# (match id, player_a, player_b, outcome, kind): learner training games, a self-play
# game, and eval games between frozen players, some before main@v2 exists.
EARLY = [
    ("t0", "main", "main@v1", "a_win", "training"),
    ("t1", "main", "main@v1", "b_win", "training"),
    ("t2", "main", "main@v1", "draw", "training"),
    ("t3", "main", "main@v1", "a_win", "training"),
    ("s0", "main", "main", "a_win", "training"),  # latest self: not in the payoff
    ("e0", "main@v1", "random", "a_win", "eval"),
    ("e1", "random", "main@v1", "a_win", "eval"),
    ("e2", "main@v1", "random", "draw", "eval"),
    ("e3", "main@v1", "random", "a_win", "eval"),
]
LATE = [
    ("e4", "main@v2", "main@v1", "a_win", "eval"),
    ("e5", "main@v2", "random", "a_win", "eval"),
    ("t4", "main", "main@v2", "b_win", "training"),
    ("e6", "main@v1", "main@v2", "draw", "eval"),
    ("e7", "main@v2", "random", "a_win", "eval"),
    ("e8", "random", "main@v2", "b_win", "eval"),
    ("t5", "main", "main@v1", "a_win", "training"),
]


def report(client: LeagueClient, games: list[tuple[str, str, str, str, str]]) -> None:
    for match_id, a, b, outcome, kind in games:
        assert client.report_result(match_id, a, b, outcome, kind=kind)


def start(db: Path, **settings: Any) -> LeagueServer:
    server = LeagueServer(db, token=TOKEN, settings=LeagueSettings(seed=0, **settings))
    server.start()
    return server


@pytest.fixture
def league(tmp_path: Path) -> Iterator[tuple[LeagueServer, LeagueClient, Path]]:
    """A server with the games above; yields (server, client, run dir)."""
    server = start(tmp_path / "league.db", payoff_decay=DECAY)
    client = LeagueClient(server.address, token=TOKEN, retry_s=2.0)
    client.register_player("main")
    client.register_snapshot("main", 1)
    report(client, EARLY)
    client.register_snapshot("main", 2)
    report(client, LATE)
    yield server, client, tmp_path
    client.close()
    server.stop(0)


def hand_payoff(games: list[tuple[str, str, str, str, str]], decay: float) -> dict:
    """Decayed score and game count plus raw W/D/L per ordered pair, straight from the
    definition: each new game of a pair multiplies the pair's older sums by `decay`."""
    pairs: dict[tuple[str, str], dict[str, float]] = {}
    for _, a, b, outcome, _ in games:
        if a == b:
            continue
        score = {"a_win": 1.0, "draw": 0.5, "b_win": 0.0}[outcome]
        for pair, s in (((a, b), score), ((b, a), 1.0 - score)):
            acc = pairs.setdefault(pair, {"score": 0.0, "games": 0.0, "w": 0, "d": 0, "l": 0})
            acc["score"] = decay * acc["score"] + s
            acc["games"] = decay * acc["games"] + 1.0
            acc[{1.0: "w", 0.5: "d", 0.0: "l"}[s]] += 1
    return pairs


def test_payoff_matches_the_decay_computed_by_hand(league: tuple) -> None:
    _, client, _ = league
    expected = hand_payoff(EARLY + LATE, DECAY)
    report_ = client.payoff()
    assert report_.decay == DECAY
    assert report_.players == ["random", "main", "main@v1", "main@v2"]  # registration order
    got = {(e.player, e.opponent): e for e in report_.entries}
    assert set(got) == set(expected)  # both directions, no self-play pair
    for pair, want in expected.items():
        e = got[pair]
        assert (e.wins, e.draws, e.losses) == (want["w"], want["d"], want["l"]), pair
        assert e.decayed_score == pytest.approx(want["score"], rel=1e-12)
        assert e.decayed_games == pytest.approx(want["games"], rel=1e-12)
        assert e.win_rate == pytest.approx((want["score"] + 0.5) / (want["games"] + 1.0))
    # main vs main@v1: W, L, D, W, then W; decay 0.9 -> score 0.9^4 + 0.9^2*0.5 + 0.9 + 1
    assert got[("main", "main@v1")].decayed_score == pytest.approx(
        0.9**4 + 0.5 * 0.9**2 + 0.9 + 1.0
    )
    # Entries come ordered by player, then opponent, in registration order.
    order = {p: k for k, p in enumerate(report_.players)}
    keys = [(order[e.player], order[e.opponent]) for e in report_.entries]
    assert keys == sorted(keys)

    sub = client.payoff(["main@v2", "random"])
    assert sub.players == ["random", "main@v2"]
    assert {(e.player, e.opponent) for e in sub.entries} == {
        ("random", "main@v2"),
        ("main@v2", "random"),
    }


def test_history_over_the_wire_refits_what_had_arrived(league: tuple) -> None:
    _, client, run_dir = league
    history = client.rating_history(points=7)
    store = LeagueStore(run_dir / "league.db", readonly=True)
    try:
        players, results = store.players(), store.results()
    finally:
        store.close()
    frozen = {p.id for p in players if p.frozen}
    created = {p.id: p.created_at for p in players}
    rated = [r for r in results if r.player_a in frozen and r.player_b in frozen]
    assert history.anchor == "random" and len(history.points) == 7
    assert history.points[0].time == pytest.approx(rated[0].created_at, abs=1e-6)
    assert history.points[-1].time == pytest.approx(rated[-1].created_at, abs=1e-6)
    for point in history.points:
        counted = [r for r in rated if r.created_at <= point.time + 1e-6]
        assert point.results == len(counted)
        known = [p for p in created if created[p] <= point.time + 1e-6]
        triples = [(r.player_a, r.player_b, score_of(r.outcome)) for r in counted]
        expected = fit(tally_results(triples), known).ratings
        rows = {r.player_id: r for r in point.ratings}
        assert set(rows) == {p for p, r in expected.items() if r.rated}
        for pid, row in rows.items():
            assert row.elo == pytest.approx(expected[pid].elo, abs=1e-6)
            assert row.ci_low == pytest.approx(expected[pid].ci_low, abs=1e-6)
            assert row.games == expected[pid].games
            assert created[pid] <= point.time  # nobody before registering
        assert [r.elo for r in point.ratings] == sorted(
            (r.elo for r in point.ratings), reverse=True
        )
    assert "main@v2" not in {r.player_id for r in history.points[0].ratings}
    # The last point is today's table.
    now = {r.player_id: r for r in client.ratings() if r.rated}
    last = {r.player_id: r for r in history.points[-1].ratings}
    assert set(last) == set(now)
    for pid, row in last.items():
        assert (row.elo, row.ci_high, row.games) == (now[pid].elo, now[pid].ci_high, now[pid].games)
    # A filter hides rows; it does not change anyone's numbers.
    only = client.rating_history(points=7, players=["main@v1"])
    assert [[r.player_id for r in p.ratings] for p in only.points] == [["main@v1"]] * 7
    assert only.points[-1].ratings[0] == last["main@v1"]


def test_no_rated_games_no_history(tmp_path: Path) -> None:
    server = start(tmp_path / "league.db")
    try:
        with LeagueClient(server.address, token=TOKEN) as client:
            client.register_player("main")
            client.report_result("t", "main", "random", "a_win")  # training: not rated
            assert client.rating_history(points=5).points == []
            assert client.payoff().entries[0].player == "random"
    finally:
        server.stop(0)


@pytest.mark.parametrize(
    ("method", "request_", "code", "needle"),
    [
        ("GetRatingHistory", pb.GetRatingHistoryRequest(points=0), "INVALID_ARGUMENT", "1..500"),
        ("GetRatingHistory", pb.GetRatingHistoryRequest(points=501), "INVALID_ARGUMENT", "501"),
        ("GetRatingHistory", pb.GetRatingHistoryRequest(points=-3), "INVALID_ARGUMENT", "-3"),
        (
            "GetRatingHistory",
            pb.GetRatingHistoryRequest(points=5, players=["main@v1", "ghost"]),
            "NOT_FOUND",
            "ghost",
        ),
        (
            "GetRatingHistory",
            pb.GetRatingHistoryRequest(points=5, players=[""]),
            "INVALID_ARGUMENT",
            "empty",
        ),
        ("GetPayoff", pb.GetPayoffRequest(players=["nobody"]), "NOT_FOUND", "nobody"),
        ("GetPayoff", pb.GetPayoffRequest(players=["random", ""]), "INVALID_ARGUMENT", "empty"),
    ],
)
def test_bad_requests_get_clear_statuses(
    league: tuple, method: str, request_: Any, code: str, needle: str
) -> None:
    server, _, _ = league
    with grpc.insecure_channel(server.address) as channel:
        rpc = getattr(league_pb2_grpc.LeagueStub(channel), method)
        with pytest.raises(grpc.RpcError) as err:
            rpc(request_, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=5)
        assert err.value.code().name == code
        assert needle in err.value.details()
        # And, as everywhere, a well-formed request without the token is refused.
        fine = (
            pb.GetPayoffRequest() if method == "GetPayoff" else pb.GetRatingHistoryRequest(points=1)
        )
        with pytest.raises(grpc.RpcError) as err:
            rpc(fine, timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_openskill_in_get_ratings_is_the_arrival_order_replay(league: tuple) -> None:
    server, client, run_dir = league
    db = run_dir / "league.db"

    def replay() -> dict:
        store = LeagueStore(db, readonly=True)
        try:
            return openskill_ratings(store.players(), store.results())
        finally:
            store.close()

    def check() -> list:
        rows = client.ratings()
        skills = replay()
        for r in rows:
            if r.rated:
                s = skills[r.player_id]
                assert (r.openskill_mu, r.openskill_sigma) == (s.mu, s.sigma)
                assert r.openskill_ordinal == pytest.approx(s.mu - 3.0 * s.sigma)
            else:
                assert (r.openskill_mu, r.openskill_sigma, r.openskill_ordinal) == (0, 0, 0)
        assert {r.player_id for r in rows if r.rated} == set(skills)
        return rows

    first = check()
    by_id = {r.player_id: r for r in first}
    assert by_id["main@v2"].openskill_mu > by_id["random"].openskill_mu  # v2 won 4 of 5
    report(client, [("e9", "main@v1", "main@v2", "a_win", "eval")])  # folded in on demand
    second = check()
    assert second != first
    client.close()
    server.stop(0)
    again = start(db, payoff_decay=DECAY)  # a restart replays the stored order
    try:
        with LeagueClient(again.address, token=TOKEN) as fresh:
            assert fresh.ratings() == second
    finally:
        again.stop(0)


# -- the CLI -------------------------------------------------------------------


def selfplay(*args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SELFPLAY_LEAGUE_TOKEN"}
    if token is not None:
        env["SELFPLAY_LEAGUE_TOKEN"] = token
    return subprocess.run(
        [str(SELFPLAY), *args], capture_output=True, text=True, env=env, timeout=120
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def failed(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_payoff_history_table_from_run_dir_and_address(league: tuple) -> None:
    server, client, run_dir = league
    run, address = ("--run", str(run_dir)), ("--address", server.address)

    from_run = json.loads(ok(selfplay("league", "payoff", *run, "--decay", str(DECAY), "--json")))
    from_service = json.loads(ok(selfplay("league", "payoff", *address, "--json")))
    assert from_run == from_service == client.payoff().as_json()
    assert from_service["decay"] == DECAY
    filtered = json.loads(ok(selfplay("league", "payoff", *address, "--player", "main", "--json")))
    assert filtered == {"decay": DECAY, "players": ["main"], "entries": []}

    text = ok(selfplay("league", "payoff", *run, "--decay", str(DECAY)))
    row = next(line for line in text.splitlines() if line.startswith("│ main@v2"))
    entries = client.payoff().entries
    [v2_vs_random] = [e for e in entries if (e.player, e.opponent) == ("main@v2", "random")]
    assert f"{v2_vs_random.win_rate:.0%} (3)" in row  # e5, e7, e8: three games
    assert "decay 0.9" in text and "random" in text

    hist_run = json.loads(ok(selfplay("league", "history", *run, "--points", "4", "--json")))
    hist_service = json.loads(
        ok(selfplay("league", "history", *address, "--points", "4", "--json"))
    )
    for doc in (hist_run, hist_service):
        for point in doc["points"]:
            point["time"] = round(point["time"], 5)  # a proto Timestamp holds nanoseconds
    assert hist_run == hist_service and len(hist_run["points"]) == 4
    assert hist_run["points"][-1]["ratings"][0]["player_id"] == "main@v2"
    text = ok(selfplay("league", "history", *address, "--points", "3"))
    assert len(re.findall(r"│ main@v1 ", text)) == 3 and "95% interval" in text

    table_run = json.loads(ok(selfplay("league", "table", *run, "--json")))
    table_service = json.loads(ok(selfplay("league", "table", *address, "--json")))
    assert table_run == table_service
    rows = {r["player"]: r for r in table_run["players"]}
    assert rows["main@v2"]["openskill_mu"] > 25.0 and rows["main"]["openskill_mu"] is None
    text = ok(selfplay("league", "table", *address))
    assert "openskill" in text and f"{rows['main@v2']['openskill_mu']:.1f}±" in text


def test_cli_errors_are_one_line(league: tuple, tmp_path: Path) -> None:
    server, _, run_dir = league
    address = ("--address", server.address)
    failed(selfplay("league", "payoff", *address, token=None), "SELFPLAY_LEAGUE_TOKEN")
    failed(selfplay("league", "table", *address, token="wrong"), "UNAUTHENTICATED")
    failed(selfplay("league", "history", "--run", str(tmp_path / "nope")), "does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    failed(selfplay("league", "payoff", "--run", str(empty), "--json"), "no league database")
    failed(selfplay("league", "payoff"), "--address")
    failed(selfplay("league", "payoff", "--run", str(run_dir), *address), "not both")
    failed(selfplay("league", "payoff", *address, "--decay", "0.5"), "--decay")
    failed(selfplay("league", "payoff", "--run", str(run_dir), "--decay", "1.5"), "decay")
    failed(selfplay("league", "history", *address, "--player", "ghost"), "ghost")
    failed(selfplay("league", "payoff", "--run", str(run_dir), "--player", "ghost"), "ghost")
    failed(selfplay("league", "table", *address, "--tls-ca", str(tmp_path / "ca.pem")), "TLS")
    assert selfplay("league", "history", *address, "--points", "501").returncode == 2
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{sock.getsockname()[1]}"
    failed(
        selfplay("league", "payoff", "--address", closed), f"cannot reach the league at {closed}"
    )


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--set", "league.payoff_decay=1.5"], "league.payoff_decay"),
        (["--set", "league.payoff_decay=0"], "league.payoff_decay"),
        (["--set", "league.opponent_sampling=elo"], "unknown opponent sampling"),
        (["--set", "league.pfsp_exponent=0"], "league.pfsp_exponent"),
        (
            ["--set", "league.self_play_fraction=0.7", "--set", "league.builtin_fraction=0.4"],
            "at most 1",
        ),
        (["--set", "league.self_play_fraction=-0.1"], "league.self_play_fraction"),
        (["--set", "league.builtins=[charge]"], "rating anchor"),
        (["--set", "league.builtins=[random, bad name]"], "invalid player name"),
        (["--set", "league.main_exploiters=1"], "unknown key"),
        (["--set", "opponent_sampling=elo"], "league.* settings only"),
        (["--config", "nowhere.yaml"], "cannot read"),
    ],
)
def test_serve_rejects_bad_matchmaking_flags(tmp_path: Path, flags: list[str], needle: str) -> None:
    failed(
        selfplay("league", "serve", "--db", str(tmp_path / "l.db"), "--port", "0", *flags), needle
    )
    assert not (tmp_path / "l.db").exists()  # refused before opening anything


def test_serve_passes_matchmaking_flags_to_the_service(tmp_path: Path) -> None:
    env = {**os.environ, "SELFPLAY_LEAGUE_TOKEN": TOKEN}
    # Started as a shell starts a background job: SIGINT ignored, inherited through exec.
    # Ctrl-C below must still stop it (the command re-arms SIGINT).
    serve = [str(SELFPLAY), "league", "serve", "--db", str(tmp_path / "l.db"), "--port", "0",
         "--config", str(Path(__file__).resolve().parents[1] / "configs" / "connect_four.yaml"),
         "--set", "league.builtins=[random, charge]", "--set", "league.self_play_fraction=0",
         "--set", "league.builtin_fraction=1", "--set", "league.opponent_sampling=pfsp_hard",
         "--set", "league.pfsp_exponent=3", "--set", "league.payoff_decay=0.5",
         "--set", "league.seed=4"]  # fmt: skip
    proc = subprocess.Popen(
        ["bash", "-c", 'trap "" INT; exec "$@"', "serve", *serve],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"league serving on (\S+)", line)
        assert match, line
        with LeagueClient(match.group(1), token=TOKEN, retry_s=5.0) as client:
            assert {p.id for p in client.players()} == {"random", "charge"}
            client.register_player("main")
            client.register_snapshot("main", 1)
            # builtin_fraction 1: never self-play, never the snapshot.
            assert {client.sample_opponent("main").player_b for _ in range(40)} <= {
                "random",
                "charge",
            }
            client.report_result("x1", "main", "random", "a_win")
            client.report_result("x2", "main", "random", "b_win")
            payoff = client.payoff(["main", "random"])
            assert payoff.decay == 0.5
            [main] = [e for e in payoff.entries if e.player == "main"]
            # A win, then a loss: 0.5 * 1 + 0 points over 0.5 * 1 + 1 games.
            assert (main.decayed_score, main.decayed_games) == (0.5, 1.5)
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the command stops the server
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()


def test_payoff_from_db_scores_draws_as_the_league_did(tmp_path: Path) -> None:
    """A run's league.draw_score reaches the payoff read from its database."""
    store = LeagueStore(tmp_path / "league.db")
    store.add_player("a", PlayerKind.BUILTIN)
    store.add_player("b", PlayerKind.BUILTIN)
    store.add_result(ResultRecord("m1", "a", "b", Outcome.DRAW, 0, MatchKind.EVAL, 1))
    store.close()
    half = payoff_from_db(tmp_path / "league.db", decay=1.0)
    none = payoff_from_db(tmp_path / "league.db", decay=1.0, draw_score=0.0)
    rate = {e.player: e.win_rate for e in half.entries}
    assert rate["a"] == rate["b"] == (0.5 + 0.5) / 2
    assert {e.player: e.win_rate for e in none.entries}["a"] == (0.0 + 0.5) / 2
