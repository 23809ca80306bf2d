"""The `selfplay` command. Machine-readable output is one JSON object on stdout; logs
and progress go to stderr. Errors a user can cause are one line, exit status 2."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cluster.config import ConfigError, JobConfig, dump_config, load_config

# gRPC's C core logs an INFO line each time Ray forks a worker next to the in-process
# league server; those are noise to a user (errors still show).
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
config_app = typer.Typer(no_args_is_help=True, help="Inspect job configs.")
league_app = typer.Typer(no_args_is_help=True, help="The league: ratings and service.")
app.add_typer(config_app, name="config")
app.add_typer(league_app, name="league")

SetOption = Annotated[list[str] | None, typer.Option("--set", help="dotted.key=value override")]


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
    set_: SetOption = None,
) -> None:
    """Run a job locally: embedded Redis, league, learner and actors. Ctrl-C or SIGTERM
    stops it cleanly (final checkpoint, JSON summary)."""
    from cluster.launcher import RunError, run_job
    from cluster.redis import RedisUnavailable

    overrides = list(set_ or [])
    if actors is not None:
        overrides.append(f"actors.num_actors={actors}")
    cfg = _load(config, overrides)
    run_dir = out or Path("runs") / cfg.job
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        summary = run_job(cfg, run_dir, minutes, resume=resume, redis_url=redis_url)
    except (RunError, RedisUnavailable) as exc:
        raise _fail(str(exc)) from None
    print(
        json.dumps(
            {
                "run_dir": str(run_dir),
                "seconds": round(summary.seconds, 1),
                "learner": summary.learner,
                "stream": summary.stream,
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


@config_app.command("show")
def config_show(config: Path, set_: SetOption = None) -> None:
    """Print the resolved config (defaults filled in, overrides applied)."""
    sys.stdout.write(dump_config(_load(config, set_)))


@league_app.command("table")
def league_table(
    run: Annotated[Path | None, typer.Option(help="run dir holding league.db")] = None,
    db: Annotated[Path | None, typer.Option(help="league database file")] = None,
    json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ratings of every league player: Elo with a 95% interval, games, W/D/L."""
    from rich.console import Console

    from league.store import StoreError
    from league.table import ratings_table, render_table

    path = db or (run / "league.db" if run else None)
    if path is None or not path.exists():
        raise _fail(f"no league database at {path}" if path else "give --run DIR or --db FILE")
    try:
        rows = ratings_table(path)
    except (StoreError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if json_:
        print(json.dumps({"players": rows}))
    else:
        Console().print(render_table(rows))


@league_app.command("serve")
def league_serve(
    db: Annotated[Path, typer.Option(help="SQLite database file")] = Path("league.db"),
    host: str = "127.0.0.1",
    port: int = 50051,
    self_play_fraction: float = 0.5,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> None:
    """Run the league service (token from SELFPLAY_LEAGUE_TOKEN)."""
    from league.server import LeagueServer, LeagueSettings

    token = os.environ.get("SELFPLAY_LEAGUE_TOKEN")
    if not token:
        raise _fail("set SELFPLAY_LEAGUE_TOKEN: the league refuses to run without a token")
    server = LeagueServer(
        db,
        host=host,
        port=port,
        token=token,
        settings=LeagueSettings(self_play_fraction=self_play_fraction),
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    server.start()
    print(f"league serving on {server.address} (db {db})", file=sys.stderr)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop(2.0)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
