"""The league gRPC server: lifecycle, auth, TLS, health checking and reflection.

Runs in-process on a thread pool, so the local launcher, a Ray actor and the
tests all host it the same way:

    server = LeagueServer("runs/x/league.db", token=secret)
    port = server.start()
    ...
    server.stop(grace=5)
"""

from __future__ import annotations

import logging
from concurrent import futures
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from core.config import LeagueSettings
from league import league_pb2, league_pb2_grpc
from league.auth import TokenAuthInterceptor
from league.matchmaking import Matchmaker
from league.service import LeagueServicer
from league.store import LeagueStore

__all__ = ["SERVICE_NAME", "LeagueServer"]

log = logging.getLogger(__name__)

SERVICE_NAME = league_pb2.DESCRIPTOR.services_by_name["League"].full_name


class LeagueServer:
    def __init__(
        self,
        db_path: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        settings: LeagueSettings | None = None,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        max_workers: int = 16,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("TLS needs both tls_cert and tls_key")
        if token is not None and not token:
            raise ValueError("token must be non-empty (pass None to disable auth)")
        self.db_path = Path(db_path)
        self.host = host
        self.port = port
        self.settings = settings or LeagueSettings()
        Matchmaker.needs_quality(self.settings)  # unknown sampling rules fail here, before start
        self._token = token
        self._tls = (Path(tls_cert), Path(tls_key)) if tls_cert and tls_key else None
        self._max_workers = max_workers
        self._server: grpc.Server | None = None
        self._store: LeagueStore | None = None
        self._health: health.HealthServicer | None = None
        self._servicer: LeagueServicer | None = None

    @property
    def address(self) -> str:
        """The "host:port" clients dial, once started (IPv6 hosts in brackets)."""
        if self._server is None:
            raise RuntimeError("LeagueServer is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> int:
        """Opens the database, binds and starts serving; returns the bound port."""
        if self._server is not None:
            raise RuntimeError("LeagueServer is already started")
        store = LeagueStore(self.db_path)
        try:
            servicer = LeagueServicer(store, self.settings)
            interceptors = [TokenAuthInterceptor(self._token)] if self._token else []
            server = grpc.server(
                futures.ThreadPoolExecutor(
                    max_workers=self._max_workers, thread_name_prefix="league"
                ),
                interceptors=interceptors,
                # gRPC enables SO_REUSEPORT by default on Linux, which lets a second
                # league bind the same port and silently split the traffic.
                options=[("grpc.so_reuseport", 0)],
            )
            league_pb2_grpc.add_LeagueServicer_to_server(servicer, server)
            health_servicer = health.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
            reflection.enable_server_reflection(
                (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
            )
            port = self._bind(server)
        except BaseException:
            store.close()
            raise
        server.start()
        for service in ("", SERVICE_NAME):  # "" is the whole-server status
            health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._server, self._store, self._health, self.port = server, store, health_servicer, port
        self._servicer = servicer
        log.info(
            "league serving on %s (db %s, auth %s, tls %s)",
            self.address,
            self.db_path,
            "on" if self._token else "off",
            "on" if self._tls else "off",
        )
        return port

    def _bind(self, server: grpc.Server) -> int:
        target = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        try:
            if self._tls:
                cert, key = (p.read_bytes() for p in self._tls)
                creds = grpc.ssl_server_credentials([(key, cert)])
                port = server.add_secure_port(target, creds)
            else:
                port = server.add_insecure_port(target)
        except RuntimeError as exc:  # newer grpcio raises instead of returning 0
            raise OSError(f"league cannot listen on {target}: {exc}") from exc
        if port == 0:
            raise OSError(f"league cannot listen on {target} (address in use?)")
        return port

    def opponent_samples(self) -> dict[tuple[str, str], int]:
        """(learner, opponent) -> training opponents sampled since start ({} when stopped);
        the dashboard's /metrics reads it when it runs in this process."""
        servicer = self._servicer
        return {} if servicer is None else servicer.opponent_samples()

    def stop(self, grace: float | None = None) -> None:
        """Stops serving (in-flight RPCs get `grace` seconds) and closes the database."""
        if self._server is None:
            return
        if self._health is not None:
            # Probes see NOT_SERVING while in-flight calls drain.
            self._health.enter_graceful_shutdown()
        self._server.stop(grace).wait()
        if self._store is not None:
            self._store.close()
        self._server = self._store = self._health = self._servicer = None
        log.info("league stopped")

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until the server stops (or `timeout`); True when it stopped."""
        server = self._server
        if server is None:
            return True
        timed_out = server.wait_for_termination(timeout)
        return not timed_out

    def __enter__(self) -> LeagueServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(grace=1.0)
