"""The league dashboard against a real league: a LeagueServer on localhost filled through
the client, a status.json written by the launcher's writer, the JSON endpoints and
/metrics checked against the league's own numbers, and the page rendered by headless
Chromium."""

from __future__ import annotations

import http.client
import json
import random
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cluster.status import STATUS_FILE, build_status, history_entry, read_status, write_status
from core.config import ConfigError, LeagueSettings, parse_config
from league.client import LeagueClient
from league.dashboard import Dashboard
from league.history import rating_history
from league.league_view import LeagueView
from league.payoff import Payoff
from league.prometheus import Metric, MetricsEndpoint
from league.server import LeagueServer
from league.standings import standings
from league.store import LeagueStore

TOKEN = "dashboard-test-token"
SNAPSHOTS = [10 * k for k in range(1, 15)]  # 14 snapshots: more than the 12 shown
BUILTINS = ("random", "charge")
SAMPLES = 40  # SampleOpponent calls
ENV_RATE = 12345.6  # the status file's env steps/s


@dataclass
class League:
    server: LeagueServer
    run_dir: Path
    sampled: Counter[str]  # opponents SampleOpponent returned for "main"
    dashboard: Dashboard

    @property
    def db(self) -> Path:
        return self.run_dir / "league.db"


def fill(client: LeagueClient, rng: random.Random) -> Counter[str]:
    """Players, a few hundred results (a fifth of them draws) and some samples."""
    client.register_player("main")
    for version in SNAPSHOTS:
        client.register_snapshot("main", version)
    strength = {"random": 0.0, "charge": 150.0}
    strength.update({f"main@v{v}": 12.0 * v for v in SNAPSHOTS})
    frozen = list(strength)
    for i in range(420):  # eval games between frozen players: these are rated
        a, b = rng.sample(frozen, 2)
        p_a = 1.0 / (1.0 + 10 ** ((strength[b] - strength[a]) / 400.0))
        outcome = "draw" if rng.random() < 0.2 else "a_win" if rng.random() < p_a else "b_win"
        client.report_result(f"eval-{i}", a, b, outcome, kind="eval", steps=50)
    for i in range(120):  # training games of the learner: payoff, not ratings
        b = rng.choice(["main", *frozen])
        outcome = rng.choice(["a_win", "draw", "b_win"])
        client.report_result(f"train-{i}", "main", b, outcome, a_version=i, steps=80)
    return Counter(client.sample_opponent("main").player_b for _ in range(SAMPLES))


def write_job_status(path: Path) -> dict[str, Any]:
    """A status file as the launcher's watcher writes it, from plausible raw stats."""
    now = time.time()
    history = [
        {
            "time": now - 15 * k,
            "env_steps_per_s": 12000.0 + k,
            "learner_steps_per_s": 9000.0,
            "policy_lag_median": 2.0,
        }
        for k in range(4, 0, -1)
    ]
    status = build_status(
        now=now,
        started_at=now - 75,
        interval_s=15.0,
        learners={
            "main": {
                "version": 321,
                "updates": 320,
                "steps_trained": 1_310_720,
                "lag_median": 2.0,
                "device": "cpu",
            }
        },
        streams={"main": {"length": 37, "chunks_dropped_lag": 5, "chunks_rejected": 1}},
        env_steps=2_000_000,
        env_steps_per_s=ENV_RATE,
        learner_steps_per_s=9100.0,
        actors=2,
        actors_alive=2,
        history=history,
        episodes={
            "main": {"episodes": 4321, "episode_return_mean": -0.125, "episode_length_mean": 21.5}
        },
    )
    status["history"].append(history_entry(status))
    write_status(path, status)
    return status


@pytest.fixture(scope="module")
def league(tmp_path_factory: pytest.TempPathFactory) -> Iterator[League]:
    run_dir = tmp_path_factory.mktemp("run")
    server = LeagueServer(
        run_dir / "league.db", token=TOKEN, settings=LeagueSettings(builtins=BUILTINS, seed=5)
    )
    server.start()
    try:
        with LeagueClient(server.address, token=TOKEN) as client:
            sampled = fill(client, random.Random(11))
        write_job_status(run_dir / STATUS_FILE)
        dashboard = Dashboard(
            run_dir / "league.db",
            run_dir / STATUS_FILE,
            opponent_samples=server.opponent_samples,
            title="test-run",
        )
        dashboard.start()
        try:
            yield League(server, run_dir, sampled, dashboard)
        finally:
            dashboard.stop()
    finally:
        server.stop(1.0)


def get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) without raising on 4xx/5xx."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def get_json(url: str) -> Any:
    status, content_type, body = get(url)
    assert status == 200, body
    assert content_type == "application/json"
    return json.loads(body)


# -- JSON endpoints -------------------------------------------------------------------


def test_standings_match_the_league(league: League) -> None:
    doc = get_json(league.dashboard.url + "api/standings")
    store = LeagueStore(league.db, readonly=True)
    try:
        expected = standings(store, "random")
        results = store.results()
    finally:
        store.close()
    assert [r["player"] for r in doc["players"]] == [s.player.id for s in expected]
    for row, s in zip(doc["players"], expected, strict=True):
        assert row["rated"] == s.rating.rated
        assert (row["games"], row["wins"], row["draws"], row["losses"]) == (
            s.rating.games,
            s.rating.wins,
            s.rating.draws,
            s.rating.losses,
        )
        if s.rating.rated:
            assert row["elo"] == pytest.approx(s.rating.elo, abs=1e-9)
            assert row["ci_low"] == pytest.approx(s.rating.ci_low, abs=1e-9)
            assert row["ci_high"] == pytest.approx(s.rating.ci_high, abs=1e-9)
    assert doc["counts"] == {"learner": 1, "snapshot": len(SNAPSHOTS), "builtin": 2}
    assert (
        doc["results"]
        == {"training": 120, "eval": 420}
        == dict(Counter(r.kind.value for r in results))
    )
    # The default selection keeps the chart readable: builtins plus the latest 12.
    latest = [f"main@v{v}" for v in SNAPSHOTS[-12:]]
    assert doc["default_selection"] == [*BUILTINS, *latest]
    assert doc["learners"] == ["main"]
    assert any(r["draws"] > 0 for r in doc["players"])


def test_history_ends_at_the_table(league: League) -> None:
    doc = get_json(league.dashboard.url + "api/history?points=12")
    table = {r["player"]: r for r in get_json(league.dashboard.url + "api/standings")["players"]}
    assert len(doc["points"]) == 12
    assert [s["player"] for s in doc["series"]] == [
        *BUILTINS,
        *[f"main@v{v}" for v in SNAPSHOTS[-12:]],
    ]
    for series in doc["series"]:
        elo, low, high = series["values"][-1]
        row = table[series["player"]]
        assert elo == pytest.approx(row["elo"], abs=0.01)
        assert (low, high) == (
            pytest.approx(row["ci_low"], abs=0.01),
            pytest.approx(row["ci_high"], abs=0.01),
        )
    # An explicit selection, and the middle of the history, agree with history.py.
    store = LeagueStore(league.db, readonly=True)
    try:
        direct = rating_history(store.players(), store.results(), "random", 12)
    finally:
        store.close()
    chosen = get_json(league.dashboard.url + "api/history?points=12&players=main@v10,main,nobody")
    assert [s["player"] for s in chosen["series"]] == ["main@v10"]
    assert sorted(chosen["skipped"]) == ["main", "nobody"]
    for point, values in zip(direct, chosen["series"][0]["values"], strict=True):
        rating = point.ratings.get("main@v10")
        if rating is None or not rating.rated:
            assert values is None
        else:
            assert values[0] == pytest.approx(rating.elo, abs=0.01)


def test_payoff_matches_payoff_py(league: League) -> None:
    doc = get_json(league.dashboard.url + "api/payoff")
    store = LeagueStore(league.db, readonly=True)
    try:
        payoff = Payoff(0.99, store.results())
    finally:
        store.close()
    players = doc["players"]
    assert players == ["main", *BUILTINS, *[f"main@v{v}" for v in SNAPSHOTS[-12:]]]
    met = 0
    for i, a in enumerate(players):
        for j, b in enumerate(players):
            rate = doc["win_rate"][i][j]
            if a == b or payoff.games(a, b) == 0:
                assert rate is None, (a, b)
            else:
                met += 1
                assert rate == pytest.approx(payoff.win_rate(a, b), abs=1e-12)
                assert doc["games"][i][j] == pytest.approx(payoff.games(a, b), abs=1e-3)
    assert met > len(players) * 3  # a real matrix, not a diagonal of blanks


def test_matches_per_minute(league: League) -> None:
    doc = get_json(league.dashboard.url + "api/matches")
    assert doc["totals"] == {"training": 120, "eval": 420}
    assert sum(b["training"] for b in doc["buckets"]) == 120
    assert sum(b["eval"] for b in doc["buckets"]) == 420
    width = doc["bucket_seconds"]
    assert all(b["start"] % width == 0 and 0 < b["seconds"] <= width for b in doc["buckets"])
    # Once the last minute is over its bucket counts whole; all 540 results arrived within
    # the five minutes before the last one.
    store = LeagueStore(league.db, readonly=True)
    try:
        last = max(r.created_at for r in store.results())
    finally:
        store.close()
    view = LeagueView(league.db)
    try:
        later = view.matches_doc(now=last + 120)
        at_last = view.matches_doc(now=last)
    finally:
        view.close()
    assert [b["seconds"] for b in later["buckets"]] == [60] * len(later["buckets"])
    assert later["buckets"] == [{**b, "seconds": 60} for b in doc["buckets"]]
    assert at_last["recent_per_minute"] == pytest.approx(540 / 5)


def test_status_endpoint(league: League) -> None:
    doc = get_json(league.dashboard.url + "api/status")
    assert doc["error"] is None and doc["live"] is True
    assert doc["status"] == read_status(league.run_dir / STATUS_FILE)
    assert doc["status"]["env_steps_per_s"] == ENV_RATE
    assert doc["status"]["learners"]["main"]["stream_length"] == 37


def test_status_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / STATUS_FILE
    first = write_job_status(path)
    second = {**first, "learner_version": 999}
    write_status(path, second)
    assert read_status(path) == second
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATUS_FILE]  # no temp file left
    assert second["policy_lag_median"] == 2.0 and second["actors_alive"] == 2
    assert second["steps_trained"] == 1_310_720 and second["chunks_dropped_lag"] == 5


# -- /metrics -------------------------------------------------------------------------

_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples of a text exposition, checking every one follows its family's HELP and
    TYPE lines and that no family is described twice."""
    helps: set[str] = set()
    types: dict[str, str] = {}
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in helps, f"second HELP for {name}"
            helps.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types and kind in ("gauge", "counter", "untyped")
            types[name] = kind
        else:
            m = _SAMPLE.fullmatch(line)
            assert m, f"not a sample line: {line!r}"
            name, raw_labels, value = m.groups()
            assert name in helps and name in types, f"{name} has no HELP/TYPE before it"
            labels = []
            rest = raw_labels or ""
            while rest:
                lm = _LABEL.match(rest)
                assert lm, f"bad labels in {line!r}"
                labels.append((lm.group(1), lm.group(2)))
                rest = rest[lm.end() :]
            key = (name, frozenset(labels))
            assert key not in samples, f"duplicate sample {line!r}"
            samples[key] = float(value)
    return samples


def metric(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_metrics_agree_with_the_league(league: League) -> None:
    status, content_type, body = get(league.dashboard.url + "metrics")
    assert status == 200
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    samples = parse_metrics(body)
    assert metric(samples, "league_db_up") == 1
    assert metric(samples, "league_players", kind="snapshot") == len(SNAPSHOTS)
    assert metric(samples, "league_players", kind="builtin") == 2
    assert metric(samples, "league_players", kind="learner") == 1
    assert metric(samples, "league_results_total", kind="eval") == 420
    assert metric(samples, "league_results_total", kind="training") == 120
    assert metric(samples, "league_matches_per_minute") >= 0
    store = LeagueStore(league.db, readonly=True)
    try:
        rows = standings(store, "random")
    finally:
        store.close()
    rated = [s for s in rows if s.rating.rated]
    assert len(rated) == len(SNAPSHOTS) + 2
    for s in rated:
        pid = s.player.id
        assert metric(samples, "league_player_elo", player=pid) == pytest.approx(s.rating.elo)
        low = metric(samples, "league_player_elo_ci_low", player=pid)
        high = metric(samples, "league_player_elo_ci_high", player=pid)
        assert (low, high) == (pytest.approx(s.rating.ci_low), pytest.approx(s.rating.ci_high))
    # Opponent sampling counts come from the league service in this process.
    counts = {
        dict(labels)["opponent"]: value
        for (name, labels), value in samples.items()
        if name == "league_opponent_samples_total" and dict(labels)["player"] == "main"
    }
    assert counts == {k: float(v) for k, v in league.sampled.items()}
    assert sum(counts.values()) == SAMPLES
    # The job's figures, from status.json.
    assert metric(samples, "selfplay_job_up") == 1
    assert metric(samples, "selfplay_env_steps_per_second") == ENV_RATE
    assert metric(samples, "selfplay_learner_version", learner="main") == 321
    assert metric(samples, "selfplay_policy_lag_median", learner="main") == 2.0
    assert metric(samples, "selfplay_actors_alive") == 2
    assert metric(samples, "selfplay_episode_return_mean", learner="main") == -0.125
    assert metric(samples, "selfplay_episodes_total", learner="main") == 4321


def test_metric_text_escaping() -> None:
    family = Metric("x_total", "counter", 'back\\slash and\nnewline "kept"')
    family.add(3, {"player": 'a"b\\c\nd'})
    family.add(0.25)
    text = MetricsEndpoint(lambda: [family, Metric("y", "gauge", "why").add(1)]).render()
    samples = parse_metrics(text.decode())
    assert samples[("x_total", frozenset({("player", 'a\\"b\\\\c\\nd')}))] == 3
    assert samples[("x_total", frozenset())] == 0.25
    assert samples[("y", frozenset())] == 1
    with pytest.raises(ValueError, match="must be named"):
        Metric("x", "counter", "a counter without _total")


# -- bad requests and missing data ------------------------------------------------------


def test_bad_requests_do_not_hurt_the_server(league: League) -> None:
    url = league.dashboard.url
    for path in ("nope", "api/standings/", "../../etc/passwd", "%00", "api", "metrics/x"):
        status, _, body = get(url + path)
        assert status == 404, path
        assert json.loads(body) == {"error": "not found"}
    for query in ("points=0", "points=abc", "points=1000", "players=" + ",".join(["p"] * 65)):
        status, _, body = get(url + "api/history?" + query)
        assert status == 400, query
        assert json.loads(body)["error"]
    host, port = league.dashboard.host, league.dashboard.port
    with socket.create_connection((host, port), timeout=10) as raw:
        # A request line that cannot be parsed gets an HTTP/0.9-style error page (there is
        # no version to answer with), then the server goes on serving.
        raw.sendall(b"GET / HTTP/1.1 with junk\r\n\r\n")
        assert b"Error code: 400" in raw.recv(400)
    with socket.create_connection((host, port), timeout=10) as raw:
        raw.sendall(b"GET /api/standings HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n")
        assert raw.recv(200).startswith(b"HTTP/1.1 431 ")
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("POST", "/api/standings", body=b"{}")
    assert conn.getresponse().status == 501
    conn.close()
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("HEAD", "/metrics")
    head = conn.getresponse()
    assert head.status == 200 and head.read() == b""
    conn.close()
    status, content_type, page = get(url)
    assert status == 200 and content_type == "text/html; charset=utf-8"
    assert "test-run" in page


def test_dashboard_without_a_database_yet(tmp_path: Path) -> None:
    with Dashboard(tmp_path / "league.db", tmp_path / STATUS_FILE) as dashboard:
        status, _, body = get(dashboard.url + "api/standings")
        assert status == 503 and "does not exist" in json.loads(body)["error"]
        samples = parse_metrics(get(dashboard.url + "metrics")[2])
        assert metric(samples, "league_db_up") == 0
        assert metric(samples, "selfplay_job_up") == 0
        assert get(dashboard.url)[0] == 200
        assert "no status.json" in get_json(dashboard.url + "api/status")["error"]


def test_view_follows_new_results(tmp_path: Path) -> None:
    with LeagueServer(tmp_path / "league.db", token=TOKEN) as server:
        with LeagueClient(server.address, token=TOKEN) as client:
            client.register_player("main")
            client.register_snapshot("main", 1)
            client.report_result("m0", "main@v1", "random", "a_win", kind="eval")
            with Dashboard(tmp_path / "league.db") as dashboard:
                first = get_json(dashboard.url + "api/standings")
                for i in range(1, 6):
                    client.report_result(f"m{i}", "main@v1", "random", "draw", kind="eval")
                    client.report_result(f"t{i}", "main", "main@v1", "b_win", a_version=i)
                second = get_json(dashboard.url + "api/standings")
                payoff = get_json(dashboard.url + "api/payoff?players=main,main@v1,random")
                metrics = parse_metrics(get(dashboard.url + "metrics")[2])
    # Standalone (no job, not in the league's process): no job or sampling figures.
    names = {name for name, _ in metrics}
    assert "league_player_elo" in names
    assert not any(n.startswith("selfplay_") for n in names)
    assert "league_opponent_samples_total" not in names
    assert first["results"] == {"training": 0, "eval": 1}
    assert second["results"] == {"training": 5, "eval": 6}
    (row,) = [r for r in second["players"] if r["player"] == "main@v1"]
    assert (row["wins"], row["draws"]) == (1, 5)
    store = LeagueStore(tmp_path / "league.db", readonly=True)
    try:
        direct = Payoff(0.99, store.results())
    finally:
        store.close()
    assert payoff["win_rate"][0][1] == pytest.approx(direct.win_rate("main", "main@v1"))
    assert payoff["win_rate"][1][2] == pytest.approx(direct.win_rate("main@v1", "random"))


# -- wiring -----------------------------------------------------------------------------


def test_dashboard_config_defaults_and_validation() -> None:
    cfg = parse_config({"job": "x", "env": {"name": "m"}})
    assert (cfg.dashboard.enabled, cfg.dashboard.host, cfg.dashboard.port) == (
        True,
        "127.0.0.1",
        8050,
    )
    with pytest.raises(ConfigError, match=r"dashboard\.port"):
        parse_config({"job": "x", "env": {"name": "m"}, "dashboard": {"port": 70000}})


def test_run_dashboard_takes_a_free_port_when_its_own_is_taken(tmp_path: Path) -> None:
    from cluster.launcher import dashboard_for_run

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = parse_config({"job": "x", "env": {"name": "m"}, "dashboard": {"port": port}})
        with dashboard_for_run(tmp_path, cfg) as url:
            assert url is not None and f":{port}/" not in url
            assert get(url)[0] == 200
        off = parse_config({"job": "x", "env": {"name": "m"}, "dashboard": {"enabled": False}})
        with dashboard_for_run(tmp_path, off) as url:
            assert url is None


# -- the page in a real browser -----------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium binary on PATH (apt-get install chromium) to render the page")


def browse(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1280,900",
            "--virtual-time-budget=5000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}


class Elements(HTMLParser):
    """Every element's tag and attributes, and the text inside elements with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text_by_id: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []  # (tag, id) of open elements

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.elements.append((tag, values))
        if tag in _VOID:
            return
        self._open.append((tag, values.get("id")))
        if "id" in values:
            self.text_by_id.setdefault(values["id"], "")

    def handle_endtag(self, tag: str) -> None:
        for k in range(len(self._open) - 1, -1, -1):
            if self._open[k][0] == tag:
                del self._open[k:]
                return

    def handle_data(self, data: str) -> None:
        for _, element_id in self._open:
            if element_id is not None:
                self.text_by_id[element_id] += data

    def having(self, tag: str, cls: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and cls in a.get("class", "").split()]


def test_page_renders_in_chromium(league: League, tmp_path: Path) -> None:
    dom = browse(league.dashboard.url, tmp_path / "profile", "--dump-dom").stdout
    page = Elements()
    page.feed(dom)
    plotted = [*BUILTINS, *[f"main@v{v}" for v in SNAPSHOTS[-12:]]]
    # Every player is in the ratings table; the plotted ones in the legend.
    rows = [a["data-player"] for t, a in page.elements if t == "tr" and "data-player" in a]
    assert sorted(rows) == sorted(["main", *BUILTINS, *[f"main@v{v}" for v in SNAPSHOTS]])
    legend = [a["data-player"] for a in page.having("span", "legend-item")]
    assert sorted(legend) == sorted(plotted)
    # One line and one interval band per plotted player, none for the two oldest.
    lines = [a["data-player"] for a in page.having("path", "elo-line")]
    bands = page.having("path", "elo-band")
    assert sorted(lines) == sorted(plotted)
    assert sorted(a["data-player"] for a in bands) == sorted(plotted)
    assert all(a["d"].endswith("Z") and a["d"].count("L") >= 3 for a in bands)
    assert "main@v10" not in lines and "main@v20" not in lines
    # The heatmap: learner plus plotted players, squared.
    cells = page.having("rect", "payoff-cell")
    assert len(cells) == (1 + len(plotted)) ** 2
    assert {a["data-row"] for a in cells} == {"main", *plotted}
    # Bars for matches per minute, the throughput line, and the figures in the tiles.
    assert page.having("rect", "bar-training") and page.having("rect", "bar-eval")
    assert [a["data-series"] for a in page.having("path", "series-line")] == [
        "env_steps_per_s",
        "learner_steps_per_s",
    ]
    assert "12,346" in page.text_by_id["tile-env-steps"]
    assert "v321" in page.text_by_id["tile-version"]
    assert "2 / 2" in page.text_by_id["tile-actors"]
    assert "-0.125" in page.text_by_id["tile-return"]
    assert "4,321 so far" in page.text_by_id["tile-return"]
    assert page.text_by_id["live"] == "live"
    banner = [a for t, a in page.elements if a.get("id") == "banner"]
    assert banner and "hidden" in banner[0], f"page reports errors: {page.text_by_id['banner']}"


def test_page_screenshot_is_not_blank(league: League, tmp_path: Path) -> None:
    shot = tmp_path / "dashboard.png"
    browse(league.dashboard.url, tmp_path / "profile", f"--screenshot={shot}")
    assert shot.stat().st_size > 30_000
    with Image.open(shot) as image:
        assert image.size == (1280, 900)
        pixels = image.convert("RGB")
        colours = pixels.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200  # charts, not a blank page
    most = max(count for count, _ in colours)
    assert most < 0.8 * 1280 * 900
