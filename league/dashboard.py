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

Routes (GET or HEAD; anything else is 404, or 400 for a bad query):

| path | what |
|---|---|
| `/` | the page: Elo over time, payoff heatmap, matches per minute, job throughput |
| `/api/standings` | every player's Elo and 95% interval, counts, the default selection |
| `/api/history?players=a,b&points=N` | Elo over time of frozen players |
| `/api/payoff?players=a,b` | decayed win rates between players (payoff.py) |
| `/api/matches` | results per time bucket and the recent rate |
| `/api/status` | the job's status.json, its age |
| `/metrics` | Prometheus text exposition format 0.0.4 |

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
import math
import re
import socket
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from league.history import HistoryPoint, rating_history
from league.payoff import Payoff
from league.ratings import Rating
from league.records import MatchKind, PlayerKind, PlayerRecord, ResultRecord
from league.standings import Standing, rating_fields, standings
from league.store import LeagueStore, StoreError

__all__ = ["Dashboard", "LeagueView", "Metric", "render_metrics"]

log = logging.getLogger(__name__)

OpponentSamples = Callable[[], Mapping[tuple[str, str], int]]

PAYOFF_DECAY = 0.99  # the league's default (LeagueSettings.payoff_decay)
DEFAULT_SNAPSHOTS = 12  # latest snapshots plotted by default, besides the builtins
HISTORY_POINTS = 40  # Elo fits per history: each is a few ms over tens of players
MAX_HISTORY_POINTS = 200
MAX_PLAYERS = 64  # per request: a heatmap of 64 x 64 is already past reading
RECENT_WINDOW_S = 300.0  # "matches per minute now" counts the last five minutes
MAX_BUCKETS = 120  # matches-per-minute bars; buckets widen (whole minutes) past this
STALE_STATUS_S = 60.0  # a status older than this is shown as not live (samples every 15 s)

_PAGE_FILE = Path(__file__).with_name("dashboard.html")


class BadRequest(ValueError):
    """A query the dashboard refuses (answered 400)."""


# -- reading the league ---------------------------------------------------------------


@dataclass(frozen=True)
class _Derived:
    """What one state of the database (players, results) gives; rebuilt when it grows."""

    key: tuple[int, int]
    standings: list[Standing]
    history: dict[int, list[HistoryPoint]]  # by number of points


class LeagueView:
    """A read-only view of a league database with the numbers the page plots.

    Results are only ever appended, so the view follows the table by rowid: each call
    reads the new rows only, folds them into the payoff (in arrival order, as the
    service does), and recomputes standings and history only when players or results
    changed. Safe to share between the server's threads.
    """

    def __init__(
        self, db_path: str | Path, anchor: str = "random", decay: float = PAYOFF_DECAY
    ) -> None:
        self.db_path = Path(db_path)
        self.anchor = anchor
        self.decay = decay
        self._lock = threading.Lock()
        self._store: LeagueStore | None = None
        self._rowid = 0
        self._results: list[ResultRecord] = []
        self._payoff = Payoff(decay)
        self._players: list[PlayerRecord] = []
        self._derived: _Derived | None = None

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def _refresh(self) -> None:
        """Reads new players and results; call with the lock held. Raises StoreError while
        the database does not exist (a league that has not started yet)."""
        if self._store is None:
            self._store = LeagueStore(self.db_path, readonly=True)
        for rowid, result in self._store.results_after(self._rowid):
            self._rowid = rowid
            self._results.append(result)
            self._payoff.add(result.player_a, result.player_b, result.outcome)
        self._players = self._store.players()
        key = (len(self._players), len(self._results))
        if self._derived is None or self._derived.key != key:
            try:
                rows = standings(self._store, self.anchor)
            except ValueError as exc:  # the anchor is not registered (yet)
                raise StoreError(str(exc)) from None
            self._derived = _Derived(key, rows, {})

    def _history(self, points: int) -> list[HistoryPoint]:
        assert self._derived is not None
        if points not in self._derived.history:
            self._derived.history[points] = rating_history(
                self._players, self._results, self.anchor, points
            )
        return self._derived.history[points]

    def _default_selection(self) -> list[str]:
        builtins = [p.id for p in self._players if p.kind == PlayerKind.BUILTIN]
        snapshots = [p.id for p in self._players if p.kind == PlayerKind.SNAPSHOT]
        return builtins + snapshots[-DEFAULT_SNAPSHOTS:]

    def _select(self, requested: Sequence[str] | None) -> tuple[list[str], list[str]]:
        """(known players in the requested order, unknown names); None = the default."""
        if requested is None:
            return self._default_selection(), []
        known = {p.id for p in self._players}
        chosen = list(dict.fromkeys(requested))
        return [p for p in chosen if p in known], [p for p in chosen if p not in known]

    # -- the JSON documents --------------------------------------------------------

    def standings_doc(self) -> dict[str, Any]:
        with self._lock:
            self._refresh()
            assert self._derived is not None
            rows = self._derived.standings
            kinds = Counter(p.kind.value for p in self._players)
            results = Counter(r.kind.value for r in self._results)
            return {
                "anchor": self.anchor,
                "players": [_standing_row(s) for s in rows],
                "default_selection": self._default_selection(),
                "learners": [p.id for p in self._players if p.kind == PlayerKind.LEARNER],
                "counts": {k.value: kinds.get(k.value, 0) for k in PlayerKind},
                "results": {k.value: results.get(k.value, 0) for k in MatchKind},
            }

    def history_doc(self, players: Sequence[str] | None, points: int) -> dict[str, Any]:
        with self._lock:
            self._refresh()
            chosen, unknown = self._select(players)
            history = self._history(points)
            by_id = {p.id: p for p in self._players}
            series = []
            skipped = list(unknown)
            for pid in chosen:
                if not by_id[pid].frozen:
                    skipped.append(pid)  # a learner's strength moves: it has no rating
                    continue
                values: list[list[float] | None] = []
                for point in history:
                    r = point.ratings.get(pid)
                    values.append(None if r is None or not r.rated else _elo_triple(r))
                series.append({"player": pid, "kind": by_id[pid].kind.value, "values": values})
            return {
                "anchor": self.anchor,
                "points": [{"time": p.time, "results": p.results} for p in history],
                "series": series,
                "skipped": skipped,
            }

    def payoff_doc(self, players: Sequence[str] | None) -> dict[str, Any]:
        """Rows and columns: the learners first (their rates are what PFSP samples by),
        then the selection. Cells: the row player's decayed score against the column
        player, None where they never met."""
        with self._lock:
            self._refresh()
            chosen, unknown = self._select(players)
            learners = [p.id for p in self._players if p.kind == PlayerKind.LEARNER]
            if players is None:
                chosen = learners + [p for p in chosen if p not in learners]
            rates: list[list[float | None]] = []
            games: list[list[float]] = []
            for a in chosen:
                row_rates: list[float | None] = []
                row_games: list[float] = []
                for b in chosen:
                    n = self._payoff.games(a, b) if a != b else 0.0
                    row_games.append(round(n, 3))
                    row_rates.append(self._payoff.win_rate(a, b) if n > 0 else None)
                rates.append(row_rates)
                games.append(row_games)
            return {
                "decay": self.decay,
                "players": chosen,
                "win_rate": rates,
                "games": games,
                "unknown": unknown,
            }

    def matches_doc(self, now: float | None = None) -> dict[str, Any]:
        """Results per time bucket (whole minutes, at most about MAX_BUCKETS of them) from
        the first result's bucket to the last one's, and the rate over the last
        RECENT_WINDOW_S. `seconds` is the time a bucket covers: less than its width for
        the bucket a live run is still filling, so its rate is not understated."""
        now = time.time() if now is None else now
        with self._lock:
            self._refresh()
            times = [(r.created_at, r.kind) for r in self._results]
        totals = Counter(kind.value for _, kind in times)
        doc: dict[str, Any] = {
            "bucket_seconds": 60,
            "buckets": [],
            "recent_window_s": RECENT_WINDOW_S,
            "recent_per_minute": _recent_rate(times, now),
            "totals": {k.value: totals.get(k.value, 0) for k in MatchKind},
        }
        if not times:
            return doc
        first = min(t for t, _ in times)
        last = max(t for t, _ in times)
        width = 60 * max(1, math.ceil((last - first) / 60 / MAX_BUCKETS))
        start = math.floor(first / width) * width
        count = math.floor(last / width) - math.floor(first / width) + 1
        bins = [
            {"start": start + i * width, "seconds": width, "training": 0, "eval": 0}
            for i in range(count)
        ]
        bins[-1]["seconds"] = round(min(width, max(1.0, now - bins[-1]["start"])), 3)
        for t, kind in times:
            bins[min(count - 1, int((t - start) // width))][kind.value] += 1
        doc["bucket_seconds"] = width
        doc["buckets"] = bins
        return doc

    def metric_families(self, now: float | None = None) -> list[Metric]:
        now = time.time() if now is None else now
        with self._lock:
            self._refresh()
            assert self._derived is not None
            kinds = Counter(p.kind.value for p in self._players)
            results = Counter(r.kind.value for r in self._results)
            rated = [s for s in self._derived.standings if s.rating.rated]
            times = [(r.created_at, r.kind) for r in self._results]
        elo = Metric("league_player_elo", "gauge", "Elo of a frozen player (anchor = 0).")
        low = Metric("league_player_elo_ci_low", "gauge", "Lower end of the 95% Elo interval.")
        high = Metric("league_player_elo_ci_high", "gauge", "Upper end of the 95% Elo interval.")
        rated_games = Metric(
            "league_player_rated_games", "gauge", "Rated games (between frozen players)."
        )
        for s in rated:
            labels = {"player": s.player.id}
            elo.add(s.rating.elo, labels)
            low.add(s.rating.ci_low, labels)
            high.add(s.rating.ci_high, labels)
            rated_games.add(s.rating.games, labels)
        players = Metric("league_players", "gauge", "Registered players by kind.")
        for k in PlayerKind:
            players.add(kinds.get(k.value, 0), {"kind": k.value})
        total = Metric("league_results_total", "counter", "Match results stored, by kind.")
        for m in MatchKind:
            total.add(results.get(m.value, 0), {"kind": m.value})
        rate = Metric(
            "league_matches_per_minute",
            "gauge",
            f"Results stored per minute over the last {RECENT_WINDOW_S:g} seconds.",
        )
        rate.add(_recent_rate(times, now))
        return [players, total, rate, elo, low, high, rated_games]


def _standing_row(s: Standing) -> dict[str, Any]:
    p = s.player
    return rating_fields(p.id, p.kind.value, p.lineage, p.version, s.rating)


def _elo_triple(r: Rating) -> list[float]:
    return [round(r.elo, 2), round(r.ci_low, 2), round(r.ci_high, 2)]


def _recent_rate(times: Iterable[tuple[float, MatchKind]], now: float) -> float:
    recent = sum(1 for t, _ in times if now - RECENT_WINDOW_S < t <= now)
    return round(recent / (RECENT_WINDOW_S / 60.0), 3)


# -- the job's status file ------------------------------------------------------------


class StatusReader:
    """The job's status.json (written atomically by the launcher), read on each call."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)

    def read(self, now: float | None = None) -> dict[str, Any]:
        """{"status": the document or None, "age_s", "live", "error": why there is none}."""
        now = time.time() if now is None else now
        doc: dict[str, Any] = {"status": None, "age_s": None, "live": False, "error": None}
        if self.path is None:
            doc["error"] = "no job beside this league (standalone league service)"
            return doc
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            doc["error"] = f"no {self.path.name} (`selfplay run` writes one every 15 s)"
            return doc
        except (OSError, ValueError) as exc:
            doc["error"] = f"cannot read {self.path.name}: {exc}"
            return doc
        if not isinstance(data, dict) or not isinstance(data.get("time"), int | float):
            doc["error"] = f"{self.path.name} is not a job status file"
            return doc
        age = max(0.0, now - float(data["time"]))
        doc.update(
            status=data,
            age_s=round(age, 1),
            live=data.get("state") == "running" and age < STALE_STATUS_S,
        )
        return doc

    def metric_families(self) -> list[Metric]:
        if self.path is None:
            return []  # a standalone league: there is no job to report on
        read = self.read()
        status = read["status"]
        up = Metric(
            "selfplay_job_up", "gauge", "1 while the job's status file is fresh and running."
        )
        up.add(1 if read["live"] else 0)
        families = [up]
        if status is None:
            return families
        age = Metric("selfplay_job_status_age_seconds", "gauge", "Age of the job's last sample.")
        age.add(read["age_s"])
        families.append(age)
        for name, key, help_text in (
            ("selfplay_env_steps_per_second", "env_steps_per_s", "Env steps per second."),
            (
                "selfplay_learner_steps_per_second",
                "learner_steps_per_s",
                "Steps the learners consumed per second.",
            ),
            ("selfplay_actors_alive", "actors_alive", "Rollout actors that answered."),
            ("selfplay_stream_length", "stream_length", "Chunks waiting in the streams."),
        ):
            value = status.get(key)
            if isinstance(value, int | float):
                families.append(Metric(name, "gauge", help_text).add(value))
        version = Metric("selfplay_learner_version", "gauge", "Latest weight version.")
        lag = Metric(
            "selfplay_policy_lag_median", "gauge", "Median policy lag (versions), recent chunks."
        )
        trained = Metric("selfplay_steps_trained_total", "counter", "Learner steps trained.")
        dropped = Metric(
            "selfplay_chunks_dropped_lag_total", "counter", "Chunks dropped for policy lag."
        )
        learners = status.get("learners")
        for lineage, st in (learners if isinstance(learners, dict) else {}).items():
            if not isinstance(st, dict):
                continue
            labels = {"learner": str(lineage)}
            for metric, key in (
                (version, "version"),
                (lag, "policy_lag_median"),
                (trained, "steps_trained"),
                (dropped, "chunks_dropped_lag"),
            ):
                value = st.get(key)
                if isinstance(value, int | float):
                    metric.add(value, labels)
        return families + [m for m in (version, lag, trained, dropped) if m.samples]


# -- Prometheus text format -----------------------------------------------------------

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass
class Metric:
    """One metric family: a name, a type, a help line and its samples."""

    name: str
    type: str  # "gauge" | "counter"
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not _METRIC_NAME.fullmatch(self.name):
            raise ValueError(f"bad metric name {self.name!r}")
        if self.type not in ("gauge", "counter", "untyped"):
            raise ValueError(f"unsupported metric type {self.type!r}")

    def add(self, value: float, labels: Mapping[str, str] | None = None) -> Metric:
        for key in labels or {}:
            if not _LABEL_NAME.fullmatch(key) or key.startswith("__"):
                raise ValueError(f"bad label name {key!r}")
        self.samples.append((dict(labels or {}), float(value)))
        return self


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def render_metrics(families: Iterable[Metric]) -> str:
    """The text exposition format 0.0.4: per family one HELP and one TYPE line, then its
    samples; label values escaped (backslash, double quote, newline)."""
    lines: list[str] = []
    seen: set[str] = set()
    for family in families:
        if family.name in seen:
            raise ValueError(f"metric family {family.name} given twice")
        seen.add(family.name)
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for labels, value in family.samples:
            text = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
            label_part = "{" + text + "}" if text else ""
            lines.append(f"{family.name}{label_part} {_format_value(value)}")
    return "\n".join(lines) + "\n"


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
        body = render_metrics(families).encode()
        return _Response(HTTPStatus.OK, body, "text/plain; version=0.0.4; charset=utf-8")


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
