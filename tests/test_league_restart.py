"""Persistence across restarts, and clients riding through a league restart."""

import socket
import threading
import time
from pathlib import Path

import pytest

from core.config import LeagueSettings
from league.client import LeagueClient, LeagueError
from league.server import LeagueServer

TOKEN = "restart-token"


def fill(client: LeagueClient) -> None:
    client.register_player("main")
    for v in (1, 2):
        client.register_snapshot("main", v)
    for k in range(8):
        client.report_result(f"e{k}", "main@v2", "main@v1", "a_win" if k < 5 else "draw")
        client.report_result(f"r{k}", "main@v1", "random", "a_win" if k % 4 else "b_win")
        client.report_result(f"t{k}", "main", "main@v2", "b_win", a_version=k)


def test_restart_on_the_same_db_keeps_players_results_and_ratings(tmp_path: Path) -> None:
    db = tmp_path / "league.db"
    first = LeagueServer(db, token=TOKEN)
    first.start()
    with LeagueClient(first.address, token=TOKEN) as client:
        fill(client)
        players, ratings = client.players(), client.ratings()
    first.stop(0)

    second = LeagueServer(db, token=TOKEN, settings=LeagueSettings(seed=5))
    second.start()
    try:
        with LeagueClient(second.address, token=TOKEN) as client:
            assert client.players() == players  # the builtin is not registered twice
            assert client.ratings() == ratings
            # Old match ids are still known: re-sent results are duplicates.
            assert not client.report_result("e0", "main@v2", "main@v1", "a_win")
            assert client.report_result("e-new", "main@v2", "main@v1", "a_win")
            assert client.sample_opponent("main").player_a == "main"
    finally:
        second.stop(0)


class ObservedClient(LeagueClient):
    """Signals its first retry, so a test can restart the league exactly then."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.retrying = threading.Event()

    def _backoff(self, seconds: float) -> None:
        self.retrying.set()
        super()._backoff(seconds)


def test_client_rides_through_a_restart_on_the_same_port(tmp_path: Path) -> None:
    db = tmp_path / "league.db"
    server = LeagueServer(db, token=TOKEN)
    port = server.start()
    client = ObservedClient(server.address, token=TOKEN, retry_s=30.0)
    try:
        client.register_player("main")
        server.stop(0)

        outcome: dict[str, object] = {}

        def call() -> None:
            try:
                outcome["players"] = [p.id for p in client.players()]
            except Exception as exc:  # surfaced to the assertion below
                outcome["error"] = exc

        worker = threading.Thread(target=call)
        worker.start()
        assert client.retrying.wait(10), "the client never saw the league go away"
        server = LeagueServer(db, port=port, token=TOKEN)
        server.start()
        worker.join(30)
        assert not worker.is_alive()
        assert outcome == {"players": ["random", "main"]}
        assert client.retries >= 1
    finally:
        client.close()
        server.stop(0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_retry_time_is_bounded() -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens here
    with LeagueClient(address, token=TOKEN, retry_s=0.5) as client:
        began = time.monotonic()
        with pytest.raises(LeagueError) as err:
            client.players()
        assert time.monotonic() - began < 5.0
        assert err.value.code == "UNAVAILABLE" and "unavailable for 0.5s" in err.value.message
        assert "\n" not in str(err.value)
        with pytest.raises(LeagueError) as err:
            client.wait_ready(0.3)
        assert err.value.code == "DEADLINE_EXCEEDED"
