"""The `selfplay` command. Machine-readable output is one JSON object on stdout; logs
and progress go to stderr. Errors a user can cause are one line, exit status 2."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cluster.config import ConfigError, JobConfig, dump_config, load_config
from cluster.jobs_cli import register as register_job_commands

if TYPE_CHECKING:
    from rich.table import Table

    from league.client import LeagueClient

# gRPC's C core logs an INFO line each time Ray forks a worker next to the in-process
# league server; those are noise to a user (errors still show).
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
config_app = typer.Typer(no_args_is_help=True, help="Inspect job configs.")
league_app = typer.Typer(
    no_args_is_help=True, help="The league: ratings, payoff matrix, Elo history, service."
)
app.add_typer(config_app, name="config")
app.add_typer(league_app, name="league")

SetOption = Annotated[list[str] | None, typer.Option("--set", help="dotted.key=value override")]
_T = TypeVar("_T")


def _fail(message: str) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(2)


def _load(path: Path, overrides: list[str] | None) -> JobConfig:
    try:
        return load_config(path, overrides or [])
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _run_config(run_dir: Path, overrides: list[str] | None) -> JobConfig:
    path = run_dir / "config.yaml"
    if not path.exists():
        raise _fail(f"{run_dir} is not a run dir (no config.yaml)")
    return _load(path, overrides)


@app.command()
def run(
    config: Path,
    out: Annotated[Path | None, typer.Option(help="run dir (default runs/JOB)")] = None,
    minutes: Annotated[float | None, typer.Option(help="stop after this long")] = None,
    resume: Annotated[bool, typer.Option(help="continue the run in --out")] = False,
    redis_url: Annotated[
        str | None, typer.Option(help="external Redis (password from SELFPLAY_REDIS_PASSWORD)")
    ] = None,
    actors: Annotated[int | None, typer.Option(help="number of rollout actors")] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="join this Ray cluster instead of starting a local Ray ('auto' "
            "inside a submitted job)"
        ),
    ] = None,
    control: Annotated[
        str | None,
        typer.Option(help="name of the job's control actor (set by `selfplay submit`)"),
    ] = None,
    set_: SetOption = None,
) -> None:
    """Run a job: embedded Redis (or --redis-url), league, learners and actors, on a local
    Ray (or the cluster at --ray-address). Ctrl-C or SIGTERM stops it cleanly (final
    checkpoint, JSON summary)."""
    from cluster.launcher import RunError, run_job
    from cluster.redis import RedisUnavailable

    overrides = list(set_ or [])
    if actors is not None:
        overrides.append(f"actors.num_actors={actors}")
    cfg = _load(config, overrides)
    run_dir = out.expanduser() if out else Path("runs") / cfg.job
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        summary = run_job(
            cfg,
            run_dir,
            minutes,
            resume=resume,
            redis_url=redis_url,
            ray_address=ray_address,
            control=control,
        )
    except (RunError, RedisUnavailable) as exc:
        raise _fail(str(exc)) from None
    print(
        json.dumps(
            {
                "run_dir": str(run_dir),
                "seconds": round(summary.seconds, 1),
                "learner": summary.learner,
                "stream": summary.stream,
                "actors": summary.actors,
                "throughput": summary.throughput,
            }
        )
    )


@app.command("eval")
def eval_(
    run_dir: Path,
    opponent: Annotated[
        str, typer.Option(help="random | tactical | charge | snapshot:ID")
    ] = "random",
    games: Annotated[int, typer.Option(min=2)] = 200,
    seed: int = 0,
    sample: Annotated[bool, typer.Option(help="sample actions instead of greedy")] = False,
    policy: Annotated[
        str | None, typer.Option(help="a snapshot to evaluate (default: latest checkpoint)")
    ] = None,
    team: Annotated[str | None, typer.Option(help="team games: the team the policy plays")] = None,
    json_: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Play the trained policy against an opponent, half the games from each seat
    (team games: the policy plays --team, the opponent the other team)."""
    from actors.evaluation import evaluate
    from learner.checkpoint import CheckpointError

    cfg = _run_config(run_dir, None)
    try:
        result = evaluate(
            run_dir, cfg, opponent, games, seed, greedy=not sample, policy_id=policy, team=team
        )
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if json_:
        print(json.dumps(result.as_json()))
    else:
        r = result.as_json()
        print(
            f"{result.games} games vs {opponent}: win {r['win_rate']:.1%} draw "
            f"{r['draw_rate']:.1%} loss {r['loss_rate']:.1%} (policy v{result.policy_version})"
        )


@app.command()
def replay(
    run_dir: Path,
    out: Annotated[Path, typer.Option(help="the video to write: .gif or .mp4")],
    opponent: Annotated[
        str, typer.Option(help="random | tactical | charge | snapshot:ID")
    ] = "random",
    policy: Annotated[
        str | None, typer.Option(help="a snapshot to play (default: latest checkpoint)")
    ] = None,
    episodes: Annotated[int, typer.Option(min=1)] = 1,
    seed: int = 0,
    size: Annotated[int, typer.Option(min=16, max=640, help="frame width in pixels")] = 320,
    fps: Annotated[
        float | None, typer.Option(min=1, help="default: the env's real time (GIF: <= 50)")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="cut each episode after this many steps")
    ] = None,
    sample: Annotated[bool, typer.Option(help="sample actions instead of greedy")] = False,
    caption: Annotated[bool, typer.Option(help="write players, step and verdict")] = True,
    json_: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Write a video of the trained policy's games, seeded and seated as `selfplay eval`."""
    from actors.video import VideoError, check_video_path
    from envs.headless_gl import RenderUnavailable, import_mujoco, use_headless_gl

    try:
        check_video_path(out)
    except VideoError as exc:
        raise _fail(str(exc)) from None
    cfg = _run_config(run_dir, None)
    try:
        # Before anything imports mujoco: it reads MUJOCO_GL once, at import.
        import_mujoco(use_headless_gl())
    except RenderUnavailable as exc:
        raise _fail(str(exc)) from None
    from actors.replay import replay as replay_games
    from learner.checkpoint import CheckpointError

    try:
        result = replay_games(
            run_dir,
            cfg,
            out,
            opponent,
            episodes,
            seed,
            size,
            fps,
            policy_id=policy,
            max_steps=max_steps,
            greedy=not sample,
            caption=caption,
        )
    except (CheckpointError, FileNotFoundError, ValueError, RenderUnavailable) as exc:
        raise _fail(str(exc)) from None
    if json_:
        print(json.dumps(result.as_json()))
        return
    for e in result.episodes:
        winner = e.winner + (f" ({e.winner_agent})" if e.winner_agent else "")
        print(
            f"episode {e.episode}: policy as {e.policy_agent} vs {opponent}: winner {winner}, "
            f"reason {e.reason}, {e.steps} steps, {e.frames} frames -> {result.out}"
        )
    print(
        f"wrote {result.out}: {result.frames} frames, {result.width}x{result.height} at "
        f"{result.fps:g} fps (policy v{result.policy_version})"
    )


@app.command()
def dashboard(
    run: Annotated[Path, typer.Option(help="run dir (reads league.db and status.json)")],
    host: Annotated[
        str, typer.Option(help="address to listen on; read-only, no login, so loopback")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="0: any free port")] = 8050,
) -> None:
    """Serve the league dashboard (Elo over time, payoff, matches, throughput) and
    Prometheus /metrics for a run dir, running or finished. Ctrl-C stops it."""
    import signal
    import threading

    from cluster.status import STATUS_FILE
    from league.dashboard import Dashboard

    if not run.is_dir():
        raise _fail(f"{run} is not a directory")
    if not (run / "league.db").exists() and not (run / "config.yaml").exists():
        raise _fail(f"{run} is not a run dir (no league.db, no config.yaml)")
    server = Dashboard(
        run / "league.db", run / STATUS_FILE, host=host, port=port, title=run.resolve().name
    )
    try:
        server.start()
    except OSError as exc:
        hint = " (--port 0 takes any free port)" if port else ""
        raise _fail(f"dashboard cannot listen on {host}:{port}: {exc}{hint}") from None
    print(json.dumps({"url": server.url, "run_dir": str(run)}), flush=True)
    print(f"dashboard for {run} at {server.url} (Ctrl-C stops it)", file=sys.stderr)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM stops it like Ctrl-C; SIGINT is re-armed because a shell starts background
    # jobs with it ignored.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@config_app.command("show")
def config_show(config: Path, set_: SetOption = None) -> None:
    """Print the resolved config (defaults filled in, overrides applied)."""
    sys.stdout.write(dump_config(_load(config, set_)))


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
            report = payoff_from_db(path, 0.99 if decay is None else decay, wanted)
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
    # Matchmaking options: None leaves LeagueSettings' own default (in the help), so
    # the two can never drift apart; LeagueSettings also does the validation.
    builtins: Annotated[
        str | None,
        typer.Option(help="comma-separated builtin players, must include random (default: random)"),
    ] = None,
    opponent_sampling: Annotated[
        str | None, typer.Option(help="uniform | pfsp_hard | pfsp_var | five (default: uniform)")
    ] = None,
    pfsp_exponent: Annotated[
        float | None, typer.Option(help="p of pfsp_hard's (1 - x)^p, > 0 (default: 2.0)")
    ] = None,
    self_play_fraction: Annotated[
        float | None, typer.Option(help="share of training games vs the latest self (default: 0.5)")
    ] = None,
    builtin_fraction: Annotated[
        float | None, typer.Option(help="share of training games vs builtins only (default: 0.0)")
    ] = None,
    payoff_decay: Annotated[
        float | None,
        typer.Option(help="win-rate recency decay per game, in (0, 1] (default: 0.99)"),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="matchmaking RNG seed (default: unseeded)")
    ] = None,
    dashboard_port: Annotated[
        int | None,
        typer.Option(help="serve the web dashboard and /metrics here (0: any free port)"),
    ] = None,
    dashboard_host: Annotated[
        str, typer.Option(help="the dashboard's address (read-only, no login)")
    ] = "127.0.0.1",
) -> None:
    """Run the league service (token from SELFPLAY_LEAGUE_TOKEN)."""
    from league.server import LeagueServer, LeagueSettings
    from league.store import StoreError

    token = os.environ.get("SELFPLAY_LEAGUE_TOKEN")
    if not token:
        raise _fail("set SELFPLAY_LEAGUE_TOKEN: the league refuses to run without a token")
    options: dict[str, Any] = {
        "opponent_sampling": opponent_sampling,
        "pfsp_exponent": pfsp_exponent,
        "self_play_fraction": self_play_fraction,
        "builtin_fraction": builtin_fraction,
        "payoff_decay": payoff_decay,
        "seed": seed,
    }
    if builtins is not None:
        names = tuple(b.strip() for b in builtins.split(",") if b.strip())
        anchor = LeagueSettings().anchor
        if anchor not in names:
            raise _fail(f"--builtins must include {anchor!r} (the rating anchor), got {builtins!r}")
        options["builtins"] = names
    try:
        settings = LeagueSettings(**{k: v for k, v in options.items() if v is not None})
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
    except (ValueError, OSError, StoreError) as exc:
        raise _fail(str(exc)) from None
    print(f"league serving on {server.address} (db {db})", file=sys.stderr)
    dashboard = None
    if dashboard_port is not None:
        from league.dashboard import Dashboard

        dashboard = Dashboard(
            db,
            host=dashboard_host,
            port=dashboard_port,
            anchor=settings.anchor,
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
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop(2.0)
    finally:
        if dashboard is not None:
            dashboard.stop()


# After `run` and the others, so `selfplay --help` lists the local commands first.
register_job_commands(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
