"""Embedded Redis and connecting: auth, persistence, one-line errors."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.waiting import wait_until
from transport.redis import (
    EmbeddedRedis,
    RedisEndpoint,
    RedisUnavailable,
    connect,
    parse_redis_url,
)


def test_password_required(redis_server: RedisEndpoint) -> None:
    assert redis_server.password
    anonymous = RedisEndpoint(redis_server.host, redis_server.port, None)
    with pytest.raises(RedisUnavailable, match="requires a password"):
        connect(anonymous)
    # A plain client without the password gets nothing either (no retries: it is final).
    plain = redis.Redis(redis_server.host, redis_server.port, retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.AuthenticationError):
        plain.get("anything")
    wrong = RedisEndpoint(redis_server.host, redis_server.port, "not-the-password")
    with pytest.raises(RedisUnavailable, match="refused the password") as info:
        connect(wrong)
    assert "not-the-password" not in str(info.value)
    assert connect(redis_server).ping()


def test_password_never_shown(redis_server: RedisEndpoint) -> None:
    password = redis_server.password
    assert password is not None
    assert password not in repr(redis_server) and password not in str(redis_server)
    assert password not in redis_server.url
    # Not on any command line either.
    assert (
        password not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    )


def test_restart_on_same_dir_keeps_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    server = EmbeddedRedis(data_dir, password='s3cret pass"word')  # needs quoting in the conf
    with server as endpoint:
        connect(endpoint).set("survives", b"yes")
    assert not server.running
    conf = data_dir / EmbeddedRedis.CONF_NAME
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o600
    assert (data_dir / "appendonly.aof").exists()
    with EmbeddedRedis(data_dir) as endpoint:  # a new generated password, same data
        assert endpoint.password != 's3cret pass"word'
        assert connect(endpoint).get("survives") == b"yes"


def test_unreachable_endpoint_is_one_line_without_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = RedisEndpoint("127.0.0.1", port, "hunter2")
    with pytest.raises(RedisUnavailable) as info:
        connect(endpoint, timeout_s=1)
    message = str(info.value)
    assert message == f"cannot reach Redis at 127.0.0.1:{port}: Connection refused"
    assert "hunter2" not in message and "\n" not in message


def test_server_that_dies_at_start_reports_its_log(tmp_path: Path) -> None:
    (tmp_path / "appendonly.aof").write_bytes(b"*3\r\n$3\r\nSET\r\ngarbage")
    with pytest.raises(RedisUnavailable, match="exited with code") as info:
        EmbeddedRedis(tmp_path).start(timeout_s=10)
    assert "append only file" in str(info.value).lower()
    assert "\n" not in str(info.value)


def test_parse_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFPLAY_REDIS_PASSWORD", "from-env")
    assert parse_redis_url("redis://head:6390/2") == RedisEndpoint("head", 6390, "from-env", 2)
    assert parse_redis_url("redis://head") == RedisEndpoint("head", 6379, "from-env", 0)
    assert parse_redis_url("redis://:p%40ss@head:1/0").password == "p@ss"
    monkeypatch.delenv("SELFPLAY_REDIS_PASSWORD")
    assert parse_redis_url("redis://head:6390").password is None
    for bad in ("http://head:6390", "redis://:6390", "redis://head:6390/x", "redis://u:p@h"):
        with pytest.raises(ValueError):
            parse_redis_url(bad)


_OWNER = """
import sys, time
from pathlib import Path
from transport.redis import EmbeddedRedis, connect
server = EmbeddedRedis(Path(sys.argv[1]), password="owner-pass")
endpoint = server.start()
connect(endpoint).set("written", b"before the owner died")
print(server._proc.pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int, timeout_s: float) -> bool:
    # A zombie (its parent, init here, not yet reaped it) has exited too.
    return wait_until(
        lambda: not os.path.exists(f"/proc/{pid}") or "Z" in _state(pid),
        timeout_s,
        f"redis-server pid {pid} to exit",
        poll_s=0.05,
    )


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_server_dies_with_an_owner_killed_hard_and_keeps_its_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert owner.stdout is not None
        redis_pid = int(owner.stdout.readline())
        assert os.path.exists(f"/proc/{redis_pid}")
        owner.kill()  # SIGKILL: no finally, no finalizer, no atexit runs in the owner
        owner.wait()
        assert _gone(redis_pid, timeout_s=10), "redis-server outlived its owner"
    finally:
        owner.kill()
    with EmbeddedRedis(data_dir) as endpoint:  # SIGTERM flushed the AOF
        assert connect(endpoint).get("written") == b"before the owner died"


def test_a_server_left_serving_the_dir_is_stopped_before_a_new_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    left = EmbeddedRedis(data_dir)
    connect(left.start()).set("kept", b"yes")
    assert left._proc is not None
    left_pid = left._proc.pid
    # A second server on the same dir (an owner without the death signal, died) must
    # not append to the same AOF beside the first: the first is stopped, data kept.
    with EmbeddedRedis(data_dir) as endpoint:
        assert _gone(left_pid, timeout_s=1)
        assert connect(endpoint).get("kept") == b"yes"
    left.stop()
