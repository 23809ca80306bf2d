"""`selfplay league table | payoff | history | serve`: the league's views, from a run dir
(read-only) or a live service (`--address`), and the standalone league service."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from league.client import LeagueClient

league_app = typer.Typer(
    no_args_is_help=True, help="The league: ratings, payoff matrix, Elo history, service."
)
_T = TypeVar("_T")


def arm_stop_signals() -> None:
    """SIGTERM (a container stopping, `kill`) stops a long-running command like Ctrl-C,
    as a KeyboardInterrupt; SIGINT is re-armed because a shell starts background jobs
    with it ignored (and a child inherits that), which left `league serve` deaf to it."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _fail(message: str) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(2)


RunDirOption = Annotated[
    Path | None, typer.Option("--run", help="run dir holding league.db (opened read-only)")
]
DbOption = Annotated[Path | None, typer.Option("--db", help="league database file (read-only)")]
AddressOption = Annotated[
    str | None,
    typer.Option(help="a live league service HOST:PORT (token from SELFPLAY_LEAGUE_TOKEN)"),
]
TlsCaOption = Annotated[
    Path | None, typer.Option("--tls-ca", help="CA certificate when the league serves TLS")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON object")]
PlayerFilterOption = Annotated[
    list[str] | None, typer.Option("--player", help="only this player (repeatable)")
]


def _print_table(table: Table, hint: str = "") -> None:
    """Prints a rich table. Into a pipe or file as wide as the table needs, one line per
    row (rich would otherwise squeeze it into 80 columns); on a terminal that is too
    narrow it still squeezes, and `hint` says how to get a narrower table."""
    from rich.console import Console

    if sys.stdout.isatty():
        console = Console()
        if hint and console.measure(table).maximum > console.width:
            print(f"note: the table is wider than the terminal; {hint}", file=sys.stderr)
        console.print(table)
        return
    width = Console(width=100_000).measure(table).maximum
    Console(width=max(width, 80)).print(table)


def _league_db(run: Path | None, db: Path | None, address: str | None) -> Path | None:
    """The database to read, or None when the league is asked over the wire."""
    if address is not None:
        if run is not None or db is not None:
            raise _fail("give either --run DIR / --db FILE or --address HOST:PORT, not both")
        return None
    if run is not None and db is not None:
        raise _fail("give --run DIR or --db FILE, not both")
    if run is not None:
        if not run.is_dir():
            raise _fail(f"run dir {run} does not exist")
        path = run / "league.db"
    elif db is not None:
        path = db
    else:
        raise _fail("give --run DIR, --db FILE or --address HOST:PORT")
    if not path.is_file():
        raise _fail(f"no league database at {path}")
    return path


def _run_draw_score(run: Path | None) -> float:
    """The run's league.draw_score (so the rates are the ones its PFSP read); ½ for a bare
    database file or a run dir without a readable config."""
    from core.config import load_config

    if run is not None and (run / "config.yaml").is_file():
        try:
            return load_config(run / "config.yaml").league.draw_score
        except ValueError:  # an unreadable config: the database alone still reports
            pass
    return 0.5


def _league_call(address: str, tls_ca: Path | None, call: Callable[[LeagueClient], _T]) -> _T:
    """Runs `call(client)` against the league at `address`; failures become one line."""
    from league.client import LeagueClient, LeagueError

    token = os.environ.get("SELFPLAY_LEAGUE_TOKEN")
    if not token:
        raise _fail(f"set SELFPLAY_LEAGUE_TOKEN to the token of the league at {address}")
    if tls_ca is not None and not tls_ca.is_file():
        raise _fail(f"no TLS CA certificate at {tls_ca}")
    # A few seconds of retries: enough to ride through a restart, short enough that a
    # wrong address fails promptly. Long timeout: a history refits Elo per point.
    client = LeagueClient(address, token=token, timeout_s=60.0, retry_s=5.0, tls_ca=tls_ca)
    try:
        return call(client)
    except LeagueError as exc:
        if exc.code == "UNAVAILABLE":
            raise _fail(f"cannot reach the league at {address}: {exc.message}") from None
        raise _fail(str(exc)) from None
    finally:
        client.close()


@league_app.command("table")
def league_table(
    run: RunDirOption = None,
    db: DbOption = None,
    address: AddressOption = None,
    tls_ca: TlsCaOption = None,
    json_: JsonOption = False,
) -> None:
    """Ratings of every player: Elo, 95% interval, W/D/L, OpenSkill.

    OpenSkill mu ± sigma is applied game by game in arrival order, so unlike Elo it
    depends on that order (league/openskill_ratings.py)."""
    from league.store import StoreError
    from league.table import ratings_table, ratings_table_from_service, render_table

    path = _league_db(run, db, address)
    if path is None:
        assert address is not None
        rows = _league_call(address, tls_ca, ratings_table_from_service)
    else:
        try:
            rows = ratings_table(path)
        except (StoreError, ValueError) as exc:
            raise _fail(str(exc)) from None
    if json_:
        print(json.dumps({"players": rows}))
    else:
        _print_table(render_table(rows))


@league_app.command("payoff")
def league_payoff(
    run: RunDirOption = None,
    db: DbOption = None,
    address: AddressOption = None,
    tls_ca: TlsCaOption = None,
    player: PlayerFilterOption = None,
    decay: Annotated[
        float | None,
        typer.Option(help="recency decay per newer game of a pair (--run/--db only; 0.99)"),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="also list players without games")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Who beats whom lately: the win-rate matrix.

    Each cell is the row player's decayed win rate against the column player (what
    PFSP samples by) and, in brackets, the raw number of games."""
    from league.store import StoreError
    from league.views import UnknownPlayer, payoff_from_db, render_payoff

    wanted = list(player or [])
    path = _league_db(run, db, address)
    if path is None:
        assert address is not None
        if decay is not None:
            raise _fail("--decay applies to --run/--db; a live league reports its own decay")
        report = _league_call(address, tls_ca, lambda client: client.payoff(wanted))
    else:
        try:
            report = payoff_from_db(
                path, 0.99 if decay is None else decay, wanted, _run_draw_score(run)
            )
        except (StoreError, ValueError, UnknownPlayer) as exc:
            raise _fail(str(exc)) from None
    if json_:
        print(json.dumps(report.as_json()))
    elif not report.entries:
        print("no games between these players yet")
    else:
        table = render_payoff(report, show_all=show_all or bool(wanted))
        _print_table(table, "pick players with --player P (repeatable), or use --json")


@league_app.command("history")
def league_history(
    run: RunDirOption = None,
    db: DbOption = None,
    address: AddressOption = None,
    tls_ca: TlsCaOption = None,
    player: PlayerFilterOption = None,
    points: Annotated[int, typer.Option(min=1, max=500, help="time points")] = 20,
    json_: JsonOption = False,
) -> None:
    """Elo with 95% intervals over time.

    Points are evenly spaced from the first rated game to the last, each a refit over
    the games played by then (the last one is `league table`)."""
    from league.store import StoreError
    from league.views import UnknownPlayer, history_from_db, render_history

    wanted = list(player or [])
    path = _league_db(run, db, address)
    if path is None:
        assert address is not None
        report = _league_call(address, tls_ca, lambda client: client.rating_history(points, wanted))
    else:
        try:
            report = history_from_db(path, points=points, wanted=wanted)
        except (StoreError, ValueError, UnknownPlayer) as exc:
            raise _fail(str(exc)) from None
    if json_:
        print(json.dumps(report.as_json()))
    elif not report.points:
        print("no rated games yet")
    else:
        _print_table(render_history(report))


@league_app.command("serve")
def league_serve(
    db: Annotated[Path, typer.Option(help="SQLite database file")] = Path("league.db"),
    host: str = "127.0.0.1",
    port: int = 50051,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    config: Annotated[
        Path | None,
        typer.Option(help="a job config whose league section sets the matchmaking"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="league.KEY=VALUE, a matchmaking setting as in a job config "
            "(league.opponent_sampling=pfsp_hard, league.builtins=[random,charge], league.seed=4)",
        ),
    ] = None,
    dashboard_port: Annotated[
        int | None,
        typer.Option(help="serve the web dashboard and /metrics here (0: any free port)"),
    ] = None,
    dashboard_host: Annotated[
        str, typer.Option(help="the dashboard's address (read-only, no login)")
    ] = "127.0.0.1",
) -> None:
    """Run the league service (token from SELFPLAY_LEAGUE_TOKEN). Its matchmaking settings
    are a job config's league.* keys (core/config.py LeagueSettings), from --config and
    --set."""
    from core.config import ConfigError, load_league_settings
    from league.server import LeagueServer
    from league.store import StoreError

    token = os.environ.get("SELFPLAY_LEAGUE_TOKEN")
    if not token:
        raise _fail("set SELFPLAY_LEAGUE_TOKEN: the league refuses to run without a token")
    try:
        settings = load_league_settings(config, list(set_ or []))
        server = LeagueServer(
            db,
            host=host,
            port=port,
            token=token,
            settings=settings,
            tls_cert=tls_cert,
            tls_key=tls_key,
        )
        server.start()
    except (ConfigError, ValueError, OSError, StoreError) as exc:
        raise _fail(str(exc)) from None
    print(f"league serving on {server.address} (db {db})", file=sys.stderr)
    dashboard = None
    if dashboard_port is not None:
        from league.dashboard import Dashboard

        dashboard = Dashboard(
            db,
            host=dashboard_host,
            port=dashboard_port,
            opponent_samples=server.opponent_samples,
            title=db.stem,
            payoff_decay=settings.payoff_decay,
        )
        try:
            dashboard.start()
        except OSError as exc:
            server.stop(2.0)
            raise _fail(
                f"dashboard cannot listen on {dashboard_host}:{dashboard_port}: {exc}"
            ) from None
        print(f"dashboard at {dashboard.url}", file=sys.stderr)
    arm_stop_signals()
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop(2.0)
    finally:
        if dashboard is not None:
            dashboard.stop()
