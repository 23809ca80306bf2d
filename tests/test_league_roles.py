"""AlphaStar's roles through a real league server: who each role plays, when a lineage is
due for a snapshot and whether it restarts afterwards, and that roles persist."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from core.config import LeagueSettings
from league.client import LeagueClient, LeagueError
from league.server import LeagueServer

TOKEN = "roles-token"
N = 3000


def _serve(tmp_path: Path, **settings: object) -> LeagueServer:
    server = LeagueServer(
        tmp_path / "league.db", token=TOKEN, settings=LeagueSettings(seed=5, **settings)
    )
    server.start()
    return server


def _report(client: LeagueClient, a: str, b: str, wins: int, losses: int, tag: str = "") -> None:
    for i in range(wins + losses):
        outcome = "a_win" if i < wins else "b_win"
        match_id = f"{tag}{a}-{b}-{i}".replace("@", "_")
        client.report_result(match_id, a, b, outcome, kind="training")


def _league(client: LeagueClient) -> None:
    """main with snapshots v1, v2; a main exploiter with v1; a league exploiter."""
    client.register_player("main")
    client.register_player("mx", role="main_exploiter")
    client.register_player("lx", role="league_exploiter")
    for v in (1, 2):
        client.register_snapshot("main", v)
    client.register_snapshot("mx", 1)


def test_roles_are_stored_and_fixed(tmp_path: Path) -> None:
    server = _serve(tmp_path)
    try:
        with LeagueClient(server.address, TOKEN) as client:
            _league(client)
            roles = {p.id: p.role for p in client.players()}
            assert roles == {
                "random": "",
                "main": "main",
                "mx": "main_exploiter",
                "lx": "league_exploiter",
                "main@v1": "main",
                "main@v2": "main",
                "mx@v1": "main_exploiter",
            }
            with pytest.raises(LeagueError) as err:
                client.register_player("mx", role="league_exploiter")
            assert err.value.code == "ALREADY_EXISTS"
            with pytest.raises(LeagueError) as err:
                client.register_player("bot", kind="builtin", role="main")
            assert err.value.code == "INVALID_ARGUMENT"
    finally:
        server.stop(0)
    server = _serve(tmp_path)  # roles survive a restart
    try:
        with LeagueClient(server.address, TOKEN) as client:
            assert {p.id: p.role for p in client.players()}["mx@v1"] == "main_exploiter"
    finally:
        server.stop(0)


def test_each_role_draws_its_own_opponents(tmp_path: Path) -> None:
    server = _serve(tmp_path, self_play_fraction=0.5, opponent_sampling="uniform")
    try:
        with LeagueClient(server.address, TOKEN) as client:
            _league(client)
            main = Counter(client.sample_opponent("main").player_b for _ in range(N))
            mx = Counter(client.sample_opponent("mx").player_b for _ in range(300))
            lx = Counter(client.sample_opponent("lx").player_b for _ in range(N))
    finally:
        server.stop(0)
    # main: half self-play, half uniform over its snapshots, random and the exploiters'
    # snapshots (mx@v1); never the exploiters' learners.
    pool = ("random", "main@v1", "main@v2", "mx@v1")
    assert set(main) == {"main", *pool}
    _near(main["main"], N, 0.5)
    for player in pool:
        _near(main[player], N, 0.5 / len(pool))
    # A main exploiter with no results yet plays the main agent's latest learner only.
    assert mx == {"main": 300}
    # A league exploiter: every frozen player uniformly, no self-play.
    frozen = ("random", "main@v1", "main@v2", "mx@v1")
    assert set(lx) == set(frozen)
    for player in frozen:
        _near(lx[player], N, 1 / len(frozen))


def test_a_losing_main_exploiter_trains_on_snapshots_it_is_even_with(tmp_path: Path) -> None:
    server = _serve(tmp_path, payoff_decay=1.0)
    try:
        with LeagueClient(server.address, TOKEN) as client:
            _league(client)
            _report(client, "mx", "main", 0, 30)  # under 10% against main's latest
            _report(client, "mx", "main@v1", 5, 5)  # even: f_var = 1/4
            _report(client, "mx", "main@v2", 0, 20)  # hopeless: f_var ~ 0.02
            counts = Counter(client.sample_opponent("mx").player_b for _ in range(N))
    finally:
        server.stop(0)
    x1, x2 = 5.5 / 11, 0.5 / 21  # payoff's prior adds one virtual draw
    w1, w2 = x1 * (1 - x1), x2 * (1 - x2)
    assert set(counts) == {"main@v1", "main@v2"}
    _near(counts["main@v1"], N, w1 / (w1 + w2))


def test_snapshot_due_by_interval_or_win_rate_and_reset_by_role(tmp_path: Path) -> None:
    server = _serve(tmp_path, payoff_decay=1.0)
    try:
        with LeagueClient(server.address, TOKEN) as client:
            _league(client)
            # The interval rule holds for every role; main agents never reset.
            due = client.snapshot_due("main", 100, 100)
            assert due.due and not due.reset and "100 versions" in due.reason
            assert not client.snapshot_due("main", 5, 100).due  # too soon for the early rule
            # A main exploiter is due early once it beats the main agent by > 70% ...
            assert not client.snapshot_due("mx", 50, 100).due
            _report(client, "mx", "main", 40, 5)
            advice = client.snapshot_due("mx", 50, 100)
            assert advice.due and advice.reset, advice
            # ... a main agent only when it beats every opponent of its pool.
            _report(client, "main", "random", 40, 0, tag="m")
            _report(client, "main", "main@v1", 40, 0, tag="m")
            _report(client, "main", "main@v2", 40, 0, tag="m")
            assert not client.snapshot_due("main", 50, 100).due  # main@v2 ok, mx@v1 unknown
            _report(client, "main", "mx@v1", 40, 0, tag="m")
            assert client.snapshot_due("main", 50, 100).due
            # League exploiters restart after about one snapshot in four.
            resets = sum(client.snapshot_due("lx", 100, 100).reset for _ in range(400))
            _near(resets, 400, 0.25)
            with pytest.raises(LeagueError) as err:
                client.snapshot_due("nobody", 1, 10)
            assert err.value.code == "NOT_FOUND"
            with pytest.raises(LeagueError) as err:
                client.snapshot_due("main", -1, 10)
            assert err.value.code == "INVALID_ARGUMENT"
    finally:
        server.stop(0)


def test_a_main_exploiter_without_main_agents_is_refused(tmp_path: Path) -> None:
    server = _serve(tmp_path)
    try:
        with LeagueClient(server.address, TOKEN) as client:
            client.register_player("mx", role="main_exploiter")
            with pytest.raises(LeagueError) as err:
                client.sample_opponent("mx")
            assert err.value.code == "FAILED_PRECONDITION"
            assert "no main agent" in str(err.value)
    finally:
        server.stop(0)


def _near(count: int, n: int, p: float) -> None:
    sd = math.sqrt(p * (1 - p) / n)
    assert abs(count / n - p) < 4.5 * sd, (count, n, p)
