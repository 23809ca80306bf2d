"""Token auth, health checking, reflection and TLS on a real localhost server."""

import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from league import league_pb2 as pb
from league import league_pb2_grpc
from league.client import LeagueClient, LeagueError
from league.server import SERVICE_NAME, LeagueServer

TOKEN = "s3cret-token-value"


@pytest.fixture
def server(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[LeagueServer]:
    caplog.set_level(logging.DEBUG)
    s = LeagueServer(tmp_path / "league.db", token=TOKEN)
    s.start()
    yield s
    s.stop(0)
    assert TOKEN not in caplog.text  # the token never reaches the logs


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x"])
def test_missing_or_wrong_token_is_unauthenticated(server: LeagueServer, token: str | None) -> None:
    with LeagueClient(server.address, token=token, retry_s=0.5) as client:
        with pytest.raises(LeagueError) as err:
            client.players()
    assert err.value.code == "UNAUTHENTICATED"
    assert TOKEN not in str(err.value)


def test_right_token_works(server: LeagueServer) -> None:
    with LeagueClient(server.address, token=TOKEN) as client:
        client.wait_ready(5.0)
        assert [p.id for p in client.players()] == ["random"]


def test_raw_bearer_header_format(server: LeagueServer) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = league_pb2_grpc.LeagueStub(channel)
        reply = stub.ListPlayers(
            pb.ListPlayersRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=5
        )
        assert reply.players[0].id == "random"
        with pytest.raises(grpc.RpcError) as err:
            stub.ListPlayers(pb.ListPlayersRequest(), metadata=(("authorization", TOKEN),))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_health_is_open_and_serving(server: LeagueServer) -> None:
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE_NAME):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert SERVICE_NAME == "selfplay.league.v1.League"


def test_reflection_lists_services_behind_the_token(server: LeagueServer) -> None:
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    with grpc.insecure_channel(server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(
            iter([request]), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=5
        )
        names = {s.name for r in replies for s in r.list_services_response.service}
        assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names
        with pytest.raises(grpc.RpcError) as err:
            list(stub.ServerReflectionInfo(iter([request]), timeout=5))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_auth_off_stop_twice_and_wait(tmp_path: Path) -> None:
    server = LeagueServer(tmp_path / "league.db")  # no token: auth off
    server.start()
    with LeagueClient(server.address) as client:
        assert client.players()[0].id == "random"
    server.stop(0)
    assert server.wait(timeout=5)
    server.stop(0)  # stopping twice is harmless


def test_bad_server_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="both"):
        LeagueServer(tmp_path / "x.db", tls_cert=tmp_path / "c.pem")
    with pytest.raises(ValueError, match="token"):
        LeagueServer(tmp_path / "x.db", token="")
    with pytest.raises(RuntimeError, match="not started"):
        _ = LeagueServer(tmp_path / "x.db").address


def test_port_in_use_is_a_clear_error(server: LeagueServer, tmp_path: Path) -> None:
    clash = LeagueServer(tmp_path / "other.db", port=server.port)
    with pytest.raises(OSError, match="cannot listen"):
        clash.start()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = LeagueServer(tmp_path / "league.db", token=TOKEN, tls_cert=cert, tls_key=key)
    server.start()
    try:
        with LeagueClient(server.address, token=TOKEN, tls_ca=cert) as client:
            client.wait_ready(5.0)
            assert client.players()[0].id == "random"
        # A plaintext client cannot talk to a TLS server.
        with LeagueClient(server.address, token=TOKEN, retry_s=0.3) as plain:
            with pytest.raises(LeagueError) as err:
                plain.players()
        assert err.value.code == "UNAVAILABLE"
    finally:
        server.stop(0)
