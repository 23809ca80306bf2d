"""Restarting the league mid-job loses no result and counts none twice.

The league runs as its own process (`selfplay league serve`), a short real job
(`selfplay run`) plays against it, and the league is SIGKILLed mid-job and started
again on the same port and database. The actors' own count of the results they
handed to the league and had acknowledged must then equal the rows in the database.
A second, in-process test keeps the league down longer than the client's retry
window, which only the league link's own queue and backoff survive.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from actors.league_link import LeagueLink, Report
from league.client import LeagueClient
from league.server import LeagueServer
from league.store import LeagueStore
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "connect_four.yaml"
TOKEN = "restart-job-token"
# As small as the end-to-end tests' jobs: games are short and results frequent.
SMALL = [
    "model.hidden=[32, 32]",
    "actors.envs_per_actor=16",
    "actors.chunk_length=16",
    "algorithm.batch_chunks=16",
    "algorithm.epochs=1",
    "league.snapshot_every_versions=2",
    "league.eval_fraction=0.2",
    "checkpoints.every_seconds=30",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def result_count(db: Path) -> int:
    if not db.exists():
        return 0
    store = LeagueStore(db, readonly=True)
    try:
        return store.result_count()
    finally:
        store.close()


def serve_league(db: Path, port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "selfplay"), "league", "serve"]
        + ["--db", str(db), "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "SELFPLAY_LEAGUE_TOKEN": TOKEN},
        stdout=log,
        stderr=log,
    )
    with LeagueClient(f"127.0.0.1:{port}", token=TOKEN) as client:
        client.wait_ready(30.0)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_league_restart_mid_job_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    db, port = tmp_path / "league.db", free_port()
    league_log = (tmp_path / "league.log").open("wb")
    job_out, job_err = tmp_path / "job.out", tmp_path / "job.err"
    overrides = [a for kv in [*SMALL, f"league.address=127.0.0.1:{port}"] for a in ("--set", kv)]
    env = {**os.environ, "SELFPLAY_LEAGUE_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    league = serve_league(db, port, league_log)
    job: subprocess.Popen[bytes] | None = None
    try:
        with job_out.open("wb") as out, job_err.open("wb") as err:
            job = subprocess.Popen(
                [sys.executable, "-m", "cluster.cli", "run", str(CONFIG), "--out",
                 str(tmp_path / "run"), "--minutes", "3", *overrides],
                cwd=ROOT, env=env, stdout=out, stderr=err,
            )  # fmt: skip
        # Mid-job: the actor is reporting results steadily.
        wait_until(lambda: result_count(db) >= 30, 60, "the first results", job, league)
        league.send_signal(signal.SIGKILL)  # no chance to finish anything in flight
        league.wait(10)
        at_kill = result_count(db)
        # Games keep finishing while the league is down; their results must wait. This is
        # the outage's length, not a wait for something: it must stay well under the
        # client's 30 s retry window (league/client.py), or the learner's snapshot calls
        # give up and the job fails, and nothing the actors do shows sooner that they
        # noticed (their link logs only once a call has given up).
        time.sleep(3.0)
        league = serve_league(db, port, league_log)
        wait_until(lambda: result_count(db) >= at_kill + 30, 60, "results after the restart", job)
        job.send_signal(signal.SIGINT)  # a clean stop: actors send what they finished
        job.wait(60)
        stderr = job_err.read_text(errors="replace")
        assert job.returncode == 0, stderr[-3000:]
        summary = json.loads(job_out.read_text())
        assert summary["learner"]["version"] >= 1

        # Each actor's link counts, final once it closed (the summary, not the actors'
        # log lines: Ray may not forward those before the driver exits).
        closed = [actor["results"] for actor in summary["actors"]]
        assert closed, f"no actor reported its league results:\n{stderr[-3000:]}"
        totals = {k: sum(c[k] for c in closed) for k in closed[0]}
        # The outage was real: the actors' calls failed and were retried.
        assert totals["client_retries"] + totals["deferred"] > 0, totals

        store = LeagueStore(db, readonly=True)
        try:
            results = store.results()
            rated = sum(t.games for t in store.rated_tallies().values())
        finally:
            store.close()
        match_ids = [r.match_id for r in results]
        assert len(set(match_ids)) == len(match_ids)
        # Every finished game was acknowledged, and each is one row: none lost, none twice.
        assert totals["unsent"] == 0, totals
        assert totals["queued"] == totals["acked"] == len(results), totals
        assert totals["applied"] + totals["duplicates"] == totals["acked"], totals
        assert len(results) > at_kill + 30

        # The restarted league rates exactly the stored games: none counted twice.
        with LeagueClient(f"127.0.0.1:{port}", token=TOKEN) as client:
            ratings = client.ratings()
        assert sum(r.games for r in ratings) == 2 * rated
    finally:
        for proc in (job, league):
            if proc is not None:
                stop(proc)
        league_log.close()


@pytest.fixture
def league_server(tmp_path: Path) -> Iterator[LeagueServer]:
    server = LeagueServer(tmp_path / "league.db", token=TOKEN)
    server.start()
    yield server
    server.stop(0)


def report(k: int) -> Report:
    return Report(f"m{k:03d}", "main", "random", "a_win", a_version=k, kind="training", steps=7)


def test_link_keeps_results_through_an_outage_longer_than_client_retries(
    league_server: LeagueServer,
) -> None:
    db, port = league_server.db_path, league_server.port
    # A client that gives up after 0.2 s, so the outage outlasts its own retrying and
    # only the link's queue keeps the results.
    client = LeagueClient(league_server.address, token=TOKEN, retry_s=0.2)
    client.register_player("main")
    link = LeagueLink(client, "main", prefetch=2)
    server = league_server
    try:
        assert link.training_match().player_a == "main"  # prefetching is on too
        for k in range(5):
            link.report(report(k))
        wait_until(lambda: link.counts.acked == 5, 30, "the first acknowledgements")

        server.stop(0)
        for k in range(5, 15):
            link.report(report(k))  # would raise if the link had died
        wait_until(lambda: link.counts.deferred >= 3, 30, "failed sends")
        assert link.counts.acked == 5
        link.report(report(15))  # still alive after several failed tries

        server = LeagueServer(db, port=port, token=TOKEN)
        server.start()
        wait_until(lambda: link.counts.acked == 16, 30, "the queued results")
        assert link.training_match().player_a == "main"  # prefetching recovered too
    finally:
        link.close(timeout_s=30)
        client.close()
        if server is not league_server:
            server.stop(0)
    counts = link.counts
    assert (counts.queued, counts.acked, counts.applied, counts.unsent) == (16, 16, 16, 0)
    assert counts.duplicates == 0
    stored = LeagueStore(db, readonly=True)
    assert sorted(r.match_id for r in stored.results()) == [f"m{k:03d}" for k in range(16)]
    stored.close()


def test_close_gives_up_on_a_dead_league_and_counts_what_was_lost(
    league_server: LeagueServer,
) -> None:
    client = LeagueClient(league_server.address, token=TOKEN, retry_s=0.2)
    client.register_player("main")
    link = LeagueLink(client, "main", prefetch=1)
    link.report(report(0))
    wait_until(lambda: link.counts.acked == 1, 30, "the first acknowledgement")
    league_server.stop(0)
    for k in range(1, 4):
        link.report(report(k))
    link.close(timeout_s=1.0)  # returns (the caller is shutting down) without raising
    client.close()
    assert (link.counts.queued, link.counts.acked, link.counts.unsent) == (4, 1, 3)


class CountingClient(LeagueClient):
    """A real client that counts its RPCs by method."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.calls: dict[str, int] = {}

    def _call(self, method: str, request: object) -> object:
        self.calls[method] = self.calls.get(method, 0) + 1
        return super()._call(method, request)


def test_link_asks_for_matches_and_sends_results_in_batches(
    league_server: LeagueServer,
) -> None:
    """Games start and end one at a time, paced like a rollout loop's; the link must still
    call the league in batches (half its prefetch), not once per game."""
    client = CountingClient(league_server.address, token=TOKEN)
    client.register_player("main")
    link = LeagueLink(client, "main", prefetch=16)
    games = 320
    try:
        for k in range(games):
            match = link.training_match()
            link.report(Report(match.match_id, "main", match.player_b, "a_win", a_version=k))
            time.sleep(0.001)  # the loop's env step between games (pacing, not a wait)
    finally:
        link.close(timeout_s=30)
        client.close()
    assert (link.counts.acked, link.counts.applied) == (games, games)
    sampled = client.calls.get("SampleOpponents", 0) + client.calls.get("SampleOpponent", 0)
    # 16 or more per call, plus the 0.2 s timers' top-ups over the ~0.5 s of play.
    assert sampled <= games / 16 + 10, client.calls
    assert client.calls["ReportResults"] <= games / 8 + 10, client.calls
