"""League service over a real localhost gRPC channel: registration, matchmaking,
results and ratings."""

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from core.config import LeagueSettings
from league import league_pb2 as pb
from league import league_pb2_grpc
from league.client import LeagueClient, LeagueError
from league.server import LeagueServer

TOKEN = "test-token-123"


def start(tmp_path: Path, **settings: object) -> LeagueServer:
    server = LeagueServer(
        tmp_path / "league.db", token=TOKEN, settings=LeagueSettings(seed=1, **settings)
    )
    server.start()
    return server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LeagueServer]:
    s = start(tmp_path)
    yield s
    s.stop(0)


@pytest.fixture
def client(server: LeagueServer) -> Iterator[LeagueClient]:
    c = LeagueClient(server.address, token=TOKEN, retry_s=2.0)
    yield c
    c.close()


@pytest.fixture
def stub(server: LeagueServer) -> Iterator[league_pb2_grpc.LeagueStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield league_pb2_grpc.LeagueStub(channel)


def raw(stub_method: Any, request: Any) -> Any:
    return stub_method(request, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=5)


def test_random_builtin_exists_and_registration_is_idempotent(client: LeagueClient) -> None:
    [random_player] = client.players()
    assert (random_player.id, random_player.kind) == ("random", "builtin")
    main = client.register_player("main", "learner")
    assert (main.id, main.kind, main.lineage, main.version) == ("main", "learner", "main", 0)
    again = client.register_player("main", "learner")
    assert again == main  # same record, same creation time
    client.register_player("charge", "builtin")
    assert [p.id for p in client.players()] == ["random", "main", "charge"]


def test_registration_errors(client: LeagueClient, stub: league_pb2_grpc.LeagueStub) -> None:
    client.register_player("main")
    with pytest.raises(LeagueError) as err:
        client.register_player("main", "builtin")
    assert err.value.code == "ALREADY_EXISTS"
    with pytest.raises(LeagueError) as err:
        client.register_player("bad@name")
    assert err.value.code == "INVALID_ARGUMENT" and "invalid player name" in err.value.message
    with pytest.raises(LeagueError, match="RegisterSnapshot") as err:
        client.register_player("snap", "snapshot")
    assert err.value.code == "INVALID_ARGUMENT"
    with pytest.raises(grpc.RpcError) as rpc_err:
        raw(stub.RegisterPlayer, pb.RegisterPlayerRequest(name="x"))  # kind unspecified
    assert rpc_err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_snapshots(client: LeagueClient) -> None:
    client.register_player("main")
    assert client.register_snapshot("main", 3) == "main@v3"
    assert client.register_snapshot("main", 3) == "main@v3"
    snap = [p for p in client.players() if p.id == "main@v3"]
    assert len(snap) == 1 and (snap[0].kind, snap[0].lineage, snap[0].version) == (
        "snapshot",
        "main",
        3,
    )
    for lineage in ("nobody", "random", "main@v3"):  # unknown, builtin, snapshot
        with pytest.raises(LeagueError) as err:
            client.register_snapshot(lineage, 1)
        assert err.value.code == "NOT_FOUND", lineage
    with pytest.raises(LeagueError) as err:
        client.register_snapshot("main", -1)
    assert err.value.code == "INVALID_ARGUMENT"


def test_training_opponents_follow_the_self_play_fraction(client: LeagueClient) -> None:
    client.register_player("main")
    client.register_player("other")
    for v in (1, 2, 3):
        client.register_snapshot("main", v)
    client.register_snapshot("other", 1)  # another lineage: never an opponent for main
    n = 2000
    matches = [client.sample_opponent("main") for _ in range(n)]
    assert len({m.match_id for m in matches}) == n
    assert all(len(m.match_id) == 32 and m.kind == "training" for m in matches)
    assert all(m.player_a == "main" for m in matches)
    counts = Counter(m.player_b for m in matches)
    # Binomial sd at n=2000: 0.011 for p=0.5, 0.0074 for p=0.125; allow about 4.5 sd.
    assert abs(counts["main"] / n - 0.5) < 0.05
    for frozen in ("random", "main@v1", "main@v2", "main@v3"):
        assert abs(counts[frozen] / n - 0.125) < 0.035, counts
    assert set(counts) == {"main", "random", "main@v1", "main@v2", "main@v3"}
    assert sum(m.self_play for m in matches) == counts["main"]


@pytest.mark.parametrize(("fraction", "expect_self"), [(0.0, False), (1.0, True)])
def test_self_play_fraction_extremes(tmp_path: Path, fraction: float, expect_self: bool) -> None:
    server = start(tmp_path, self_play_fraction=fraction)
    try:
        with LeagueClient(server.address, token=TOKEN) as client:
            client.register_player("main")
            client.register_snapshot("main", 1)
            assert {client.sample_opponent("main").self_play for _ in range(50)} == {expect_self}
    finally:
        server.stop(0)


def test_sample_opponent_errors(client: LeagueClient) -> None:
    with pytest.raises(LeagueError) as err:
        client.sample_opponent("ghost")
    assert err.value.code == "NOT_FOUND" and "ghost" in err.value.message
    with pytest.raises(LeagueError) as err:
        client.sample_opponent("random")
    assert err.value.code == "FAILED_PRECONDITION"


def test_eval_matches_prefer_the_least_played(client: LeagueClient) -> None:
    with pytest.raises(LeagueError) as err:
        client.sample_eval_match()
    assert err.value.code == "FAILED_PRECONDITION"
    client.register_player("main")
    client.register_snapshot("main", 1)
    client.register_snapshot("main", 2)
    for _ in range(20):  # nobody has games: the newest goes first
        m = client.sample_eval_match()
        assert m.kind == "eval" and m.player_a == "main@v2"
        assert m.player_b in {"random", "main@v1"}
    client.report_result("e1", "main@v2", "random", "a_win", kind="eval")
    assert client.sample_eval_match().player_a == "main@v1"
    client.report_result("e2", "main@v1", "random", "draw", kind="eval")
    # v2 and v1 have 1 game, random 2: newest of the least played.
    assert client.sample_eval_match().player_a == "main@v2"
    client.report_result("t1", "main", "main@v2", "a_win")  # training games are not rated
    assert client.sample_eval_match().player_a == "main@v2"


def test_results_are_applied_once(client: LeagueClient, stub: league_pb2_grpc.LeagueStub) -> None:
    client.register_player("main")
    client.register_snapshot("main", 1)
    assert client.report_result("m-1", "main@v1", "random", "a_win", kind="eval", steps=9)
    assert not client.report_result("m-1", "main@v1", "random", "a_win", kind="eval", steps=9)
    reply = raw(
        stub.ReportResult,
        pb.ReportResultRequest(
            match_id="m-1",
            player_a="random",
            player_b="main@v1",
            outcome=pb.OUTCOME_A_WIN,
            kind=pb.MATCH_KIND_EVAL,
        ),
    )
    assert (reply.applied, reply.duplicate) == (False, True)
    assert "differs" in reply.message  # a reused id with other content is flagged
    ratings = {r.player_id: r for r in client.ratings()}
    assert (ratings["main@v1"].games, ratings["main@v1"].wins) == (1, 1)
    assert (ratings["random"].games, ratings["random"].losses) == (1, 1)


def test_concurrent_reports_count_each_match_once(client: LeagueClient) -> None:
    client.register_player("main")
    client.register_snapshot("main", 1)
    applied = Counter()
    lock = threading.Lock()

    def report(worker: int) -> None:
        for k in range(25):
            ok = client.report_result(f"w{worker // 2}-{k}", "main@v1", "random", "draw")
            with lock:
                applied[ok] += 1

    threads = [threading.Thread(target=report, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert applied == {True: 100, False: 100}
    ratings = {r.player_id: r for r in client.ratings()}
    assert ratings["main@v1"].draws == 100


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"match_id": ""}, "match_id is empty"),
        ({"match_id": "has space"}, "invalid match_id"),
        ({"match_id": "x" * 129}, "invalid match_id"),
        ({"outcome": pb.OUTCOME_UNSPECIFIED}, "outcome"),
        ({"outcome": 17}, "outcome"),
        ({"kind": pb.MATCH_KIND_UNSPECIFIED}, "kind"),
        ({"a_version": -1}, "a_version"),
        ({"steps": -5}, "steps"),
        ({"player_a": ""}, "player_a is empty"),
    ],
)
def test_report_rejects_bad_input(
    client: LeagueClient, stub: league_pb2_grpc.LeagueStub, change: dict, needle: str
) -> None:
    fields = dict(
        match_id="ok_id-1",
        player_a="random",
        player_b="random",
        outcome=pb.OUTCOME_DRAW,
        kind=pb.MATCH_KIND_EVAL,
        a_version=0,
        steps=1,
    )
    fields.update(change)
    with pytest.raises(grpc.RpcError) as err:
        raw(stub.ReportResult, pb.ReportResultRequest(**fields))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.value.details()
    # Nothing was stored, so the well-formed id is still free.
    assert client.report_result("ok_id-1", "random", "random", "draw")


def test_report_unknown_players_and_client_side_checks(client: LeagueClient) -> None:
    match_id = "a" * 128  # the longest allowed id
    with pytest.raises(LeagueError) as err:
        client.report_result(match_id, "random", "ghost", "a_win")
    assert err.value.code == "NOT_FOUND" and "ghost" in str(err.value)
    with pytest.raises(ValueError):
        client.report_result(match_id, "random", "random", "win")  # not an outcome
    assert client.report_result(match_id, "random", "random", "b_win")


def test_ratings_rate_frozen_games_only(client: LeagueClient) -> None:
    client.register_player("main")
    client.register_snapshot("main", 1)
    client.register_snapshot("main", 2)
    for k in range(10):
        client.report_result(f"a{k}", "main@v2", "random", "a_win", kind="eval")
        client.report_result(f"b{k}", "main@v1", "random", "a_win" if k < 6 else "b_win")
        client.report_result(f"c{k}", "main", "main@v2", "a_win", a_version=k)
    rows = client.ratings()
    assert [r.player_id for r in rows][:3] == ["main@v2", "main@v1", "random"]
    by_id = {r.player_id: r for r in rows}
    assert by_id["random"].elo == 0.0 and by_id["random"].ci_low == by_id["random"].ci_high == 0
    assert by_id["main@v2"].elo > by_id["main@v1"].elo > 0
    assert by_id["main@v1"].ci_low < by_id["main@v1"].elo < by_id["main@v1"].ci_high
    assert (by_id["main@v2"].games, by_id["main@v2"].wins) == (10, 10)  # learner games left out
    assert not by_id["main"].rated and by_id["main"].games == 0 and by_id["main"].kind == "learner"


def test_batched_training_matches(client: LeagueClient, stub: league_pb2_grpc.LeagueStub) -> None:
    client.register_player("main")
    client.register_snapshot("main", 1)
    matches = client.sample_opponents("main", 1000)
    assert len(matches) == 1000 == len({m.match_id for m in matches})
    assert all(m.player_a == "main" and m.kind == "training" for m in matches)
    counts = Counter(m.player_b for m in matches)  # self-play 0.5, then random / v1
    assert set(counts) == {"main", "random", "main@v1"} and abs(counts["main"] - 500) < 80
    for count in (0, 1025):
        with pytest.raises(grpc.RpcError) as err:
            raw(stub.SampleOpponents, pb.SampleOpponentsRequest(player="main", count=count))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "count must be between 1 and 1024" in err.value.details()
    with pytest.raises(LeagueError) as league_err:
        client.sample_opponents("random", 3)
    assert league_err.value.code == "FAILED_PRECONDITION"


def test_batched_results_are_all_or_nothing_and_idempotent(
    client: LeagueClient, stub: league_pb2_grpc.LeagueStub
) -> None:
    from league.client import ResultReport

    batch = [ResultReport(f"batch-{i}", "random", "random", "draw", kind="eval") for i in range(5)]
    assert client.report_results(batch[:3]) == [True, True, True]
    # A resend after a dropped connection: the first three count once.
    assert client.report_results(batch) == [False, False, False, True, True]
    # One unknown player rejects the whole batch; the good results stay unrecorded.
    fresh = [ResultReport(f"fresh-{i}", "random", "random", "a_win") for i in range(3)]
    ghost = ResultReport("fresh-ghost", "random", "ghost", "a_win")
    with pytest.raises(LeagueError) as err:
        client.report_results([*fresh, ghost])
    assert err.value.code == "NOT_FOUND" and "results[3]" in err.value.message
    bad_id = pb.ReportResultRequest(
        match_id="no spaces", player_a="random", player_b="random", outcome=pb.OUTCOME_DRAW
    )
    with pytest.raises(grpc.RpcError) as rpc_err:
        raw(stub.ReportResults, pb.ReportResultsRequest(results=[bad_id]))
    assert rpc_err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "results[0]" in rpc_err.value.details()
    with pytest.raises(grpc.RpcError) as rpc_err:
        raw(stub.ReportResults, pb.ReportResultsRequest())
    assert rpc_err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert client.report_results(fresh) == [True, True, True]  # none had been stored
