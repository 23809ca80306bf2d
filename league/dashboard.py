"""The league dashboard: one web page, JSON endpoints and Prometheus /metrics.

    dashboard = Dashboard("runs/x/league.db", "runs/x/status.json")
    dashboard.start()          # serves on a daemon thread; returns the port
    print(dashboard.url)
    dashboard.stop()

Everything is read from the league's SQLite file, opened read-only (WAL lets it read
while the service writes), and from the job's status file (cluster/status.py) when there
is one. So the dashboard works the same in the league's process, beside a running job
or over a finished run dir. Only the opponent sampling counts live in the league
service's memory: pass `opponent_samples` (LeagueServer.opponent_samples) when the
dashboard runs in the league's process.

This module is the HTTP side; the numbers come from league_view.py (the database) and
job_status.py (status.json), and prometheus_client renders /metrics (prometheus.py).

Routes (GET or HEAD; anything else is 404, or 400 for a bad query):

| path | what |
|---|---|
| `/` | the page: Elo over time, payoff heatmap, matches per minute, job throughput |
| `/api/standings` | every player's Elo and 95% interval, counts, the default selection |
| `/api/history?players=a,b&points=N` | Elo over time of frozen players |
| `/api/payoff?players=a,b` | decayed win rates between players (payoff.py) |
| `/api/matches` | results per time bucket and the recent rate |
| `/api/evaluations?points=N` | goal jobs: each learner's evaluation success by steps trained |
| `/api/status` | the job's status.json, its age |
| `/metrics` | Prometheus text exposition format 0.0.4 (prometheus_client) |

`players` is a comma-separated list; without it the default selection is used (the
builtins plus the latest 12 snapshots), which keeps the charts readable in a long run.

No authentication: it is read-only, and it binds to 127.0.0.1 unless told otherwise.
The page is hand-written HTML, CSS and JavaScript drawing SVG (dashboard.html), with no
external scripts, fonts or styles, so it works offline; a Content-Security-Policy
forbids loading anything from elsewhere.
"""

from __future__ import annotations

import html
import json
import logging
import socket
import sqlite3
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from league.job_status import StatusReader
from league.league_view import PAYOFF_DECAY, LeagueView
from league.prometheus import CONTENT_TYPE, Metric, MetricsEndpoint
from league.store import StoreError

__all__ = ["Dashboard"]

log = logging.getLogger(__name__)

OpponentSamples = Callable[[], Mapping[tuple[str, str], int]]

HISTORY_POINTS = 40  # Elo fits per history: each is a few ms over tens of players
MAX_HISTORY_POINTS = 200
MAX_PLAYERS = 64  # per request: a heatmap of 64 x 64 is already past reading

_PAGE_FILE = Path(__file__).with_name("dashboard.html")


class BadRequest(ValueError):
    """A query the dashboard refuses (answered 400)."""


def _sample_metrics(samples: Mapping[tuple[str, str], int]) -> Metric:
    metric = Metric(
        "league_opponent_samples_total",
        "counter",
        "Training opponents the league sampled for a learner, since the league started.",
    )
    for (player, opponent), n in sorted(samples.items()):
        metric.add(n, {"player": player, "opponent": opponent})
    return metric


# -- HTTP -----------------------------------------------------------------------------


@dataclass
class _Response:
    status: HTTPStatus
    body: bytes
    content_type: str


def _json(doc: Any, status: HTTPStatus = HTTPStatus.OK) -> _Response:
    body = json.dumps(doc, allow_nan=False, separators=(",", ":")).encode()
    return _Response(status, body, "application/json")


def _error(status: HTTPStatus, message: str) -> _Response:
    return _json({"error": message}, status)


def _players_param(query: Mapping[str, list[str]]) -> list[str] | None:
    if "players" not in query:
        return None
    names = [n.strip() for n in ",".join(query["players"]).split(",") if n.strip()]
    if len(names) > MAX_PLAYERS:
        raise BadRequest(f"at most {MAX_PLAYERS} players per request, got {len(names)}")
    for name in names:
        if len(name) > 200:
            raise BadRequest("player names are at most 200 characters")
    return names


def _points_param(query: Mapping[str, list[str]]) -> int:
    raw = query.get("points", [str(HISTORY_POINTS)])[-1]
    try:
        points = int(raw)
    except ValueError:
        raise BadRequest(f"points must be an integer, got {raw[:20]!r}") from None
    if not 1 <= points <= MAX_HISTORY_POINTS:
        raise BadRequest(f"points must be in 1..{MAX_HISTORY_POINTS}, got {points}")
    return points


class _App:
    """Routes a request path to a response; everything the handler threads share."""

    def __init__(
        self,
        view: LeagueView,
        status: StatusReader,
        opponent_samples: OpponentSamples | None,
        title: str,
    ) -> None:
        self.view = view
        self.status = status
        self.opponent_samples = opponent_samples
        self._metrics_endpoint = MetricsEndpoint(self._metric_families)
        self.page = _PAGE_FILE.read_text().replace("__TITLE__", html.escape(title)).encode()

    def respond(self, target: str) -> _Response:
        parts = urlsplit(target)
        try:
            query = parse_qs(
                parts.query, keep_blank_values=True, strict_parsing=False, max_num_fields=20
            )
        except ValueError as exc:
            return _error(HTTPStatus.BAD_REQUEST, f"bad query: {exc}")
        route = {
            "/": self._page,
            "/index.html": self._page,
            "/api/standings": lambda q: _json(self.view.standings_doc()),
            "/api/history": lambda q: _json(
                self.view.history_doc(_players_param(q), _points_param(q))
            ),
            "/api/payoff": lambda q: _json(self.view.payoff_doc(_players_param(q))),
            "/api/matches": lambda q: _json(self.view.matches_doc()),
            "/api/evaluations": lambda q: _json(self.view.evaluations_doc(_points_param(q))),
            "/api/status": lambda q: _json(self.status.read()),
            "/metrics": self._metrics,
        }.get(parts.path)
        if route is None:
            return _error(HTTPStatus.NOT_FOUND, "not found")
        try:
            return route(query)
        except BadRequest as exc:
            return _error(HTTPStatus.BAD_REQUEST, str(exc))
        except (StoreError, sqlite3.Error) as exc:
            # No database yet, or one that cannot be read: the page says so and retries.
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, f"league database: {exc}")

    def _page(self, query: Mapping[str, list[str]]) -> _Response:
        return _Response(HTTPStatus.OK, self.page, "text/html; charset=utf-8")

    def _metrics(self, query: Mapping[str, list[str]]) -> _Response:
        return _Response(HTTPStatus.OK, self._metrics_endpoint.render(), CONTENT_TYPE)

    def _metric_families(self) -> list[Metric]:
        """Everything /metrics reports, read afresh for each scrape."""
        families: list[Metric] = []
        up = Metric("league_db_up", "gauge", "1 when the league database could be read.")
        try:
            league = self.view.metric_families()
            up.add(1)
        except (StoreError, sqlite3.Error) as exc:
            log.debug("metrics without league numbers: %s", exc)
            league = []
            up.add(0)
        families += [up, *league]
        if self.opponent_samples is not None:
            families.append(_sample_metrics(self.opponent_samples()))
        families += self.status.metric_families()
        return families


_PAGE_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "selfplay-dashboard"
    protocol_version = "HTTP/1.1"
    timeout = 30  # a client that stops sending frees its thread

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        try:
            response = self.server.app.respond(self.path)
        except Exception:  # a bug must cost one request, not the server
            log.exception("dashboard request %s failed", self.path[:200])
            response = _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (see the log)")
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            if response.content_type.startswith("text/html"):
                self.send_header("Content-Security-Policy", _PAGE_CSP)
            self.end_headers()
            if send_body:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away mid-answer

    def log_message(self, format: str, *args: Any) -> None:
        # One line per poll would drown the job's progress lines: debug level only.
        log.debug("dashboard %s: %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: _App

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr for any error; a client hanging up
        # is routine, anything else is logged once through logging.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            log.debug("dashboard client %s went away: %s", client_address[0], exc)
        else:
            log.exception("dashboard request from %s failed", client_address[0])


class _Server6(_Server):
    address_family = socket.AF_INET6


class Dashboard:
    """The HTTP server on a daemon thread. `port` 0 takes any free port."""

    def __init__(
        self,
        db_path: str | Path,
        status_path: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        anchor: str = "random",
        opponent_samples: OpponentSamples | None = None,
        title: str | None = None,
        payoff_decay: float = PAYOFF_DECAY,
    ) -> None:
        self.host = host
        self.port = port
        self.view = LeagueView(db_path, anchor, payoff_decay)
        self._app = _App(
            self.view, StatusReader(status_path), opponent_samples, title or Path(db_path).name
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("Dashboard is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> int:
        """Binds and serves; returns the port. OSError when the address is taken."""
        if self._server is not None:
            raise RuntimeError("Dashboard is already started")
        cls = _Server6 if ":" in self.host else _Server
        server = cls((self.host, self.port), _Handler)
        server.app = self._app
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="dashboard", kwargs={"poll_interval": 0.5}
        )
        self._thread.daemon = True
        self._thread.start()
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            log.warning(
                "dashboard listens on %s without authentication: anyone who can reach it "
                "sees the league's players, ratings and the job's throughput",
                self.host,
            )
        return self.port

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()
        self.view.close()
        self._server = self._thread = None

    def __enter__(self) -> Dashboard:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
