"""The `selfplay` command. Machine-readable output is one JSON object on stdout; logs
and progress go to stderr. Errors a user can cause are one line, exit status 2."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from cluster.jobs_cli import register as register_job_commands
from cluster.league_cli import arm_stop_signals, league_app
from core.config import ConfigError, JobConfig, dump_config, load_config

if TYPE_CHECKING:
    pass

# gRPC's C core logs an INFO line each time Ray forks a worker next to the in-process
# league server; those are noise to a user (errors still show).
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
config_app = typer.Typer(no_args_is_help=True, help="Inspect job configs.")
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
    from transport.redis import RedisUnavailable

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
    except (RunError, RedisUnavailable, ConfigError) as exc:
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
        str, typer.Option(help="random | tactical | charge | still | snapshot:ID")
    ] = "random",
    games: Annotated[int, typer.Option(min=2)] = 200,
    episodes: Annotated[
        int | None, typer.Option(min=1, help="goal jobs (HER): greedy episodes to play")
    ] = None,
    seed: int = 0,
    sample: Annotated[bool, typer.Option(help="sample actions instead of greedy")] = False,
    policy: Annotated[
        str | None, typer.Option(help="a snapshot to evaluate (default: latest checkpoint)")
    ] = None,
    team: Annotated[str | None, typer.Option(help="team games: the team the policy plays")] = None,
    json_: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    dynamics: Annotated[
        str,
        typer.Option(help="nominal | train | heldout (env.randomization's sets)"),
    ] = "nominal",
    dynamics_from: Annotated[
        Path | None,
        typer.Option(help="a config whose env.randomization --dynamics reads (default: the run's)"),
    ] = None,
) -> None:
    """Play the trained policy against an opponent, half the games from each seat
    (team games: the policy plays --team, the opponent the other team). Goal jobs (HER):
    greedy episodes of the task, `{"episodes", "success_rate", ...}`. With --dynamics
    heldout, --games (--episodes) on each held-out set, each set's result under "sets"."""
    from actors.evaluation import (
        dynamics_sets,
        evaluate,
        evaluate_goal,
        games_eval_doc,
        goal_eval_doc,
    )
    from actors.inference import limit_inference_threads
    from core.checkpoints import CheckpointError
    from envs.goal import goal_task

    cfg = _run_config(run_dir, None)
    # One game at a time, one observation per forward pass: a thread pool only spins. With
    # torch's default pools, 200 ant games took ~10x the CPU (12.8 min beside a running job).
    limit_inference_threads(1)
    source = _load(dynamics_from, None) if dynamics_from is not None else cfg
    if goal_task(cfg.env.name) is not None:
        try:
            sets = dynamics_sets(dynamics, source.env.randomization)
            results = {
                name: evaluate_goal(
                    run_dir, cfg, episodes or games, seed, policy_id=policy, dynamics=ranges
                )
                for name, ranges in sets.items()
            }
        except (CheckpointError, FileNotFoundError, ValueError) as exc:
            raise _fail(str(exc)) from None
        doc = goal_eval_doc(dynamics, results)
        if json_:
            print(json.dumps(doc))
        else:
            for name, result in results.items():
                print(
                    f"{name}: {result.episodes} episodes, success "
                    f"{result.successes / result.episodes:.1%} (policy v{result.policy_version})"
                )
        return
    if episodes is not None:
        raise _fail("--episodes is for goal jobs; this job plays --games against an opponent")
    try:
        sets = dynamics_sets(dynamics, source.env.randomization)
        results = {
            name: evaluate(
                run_dir, cfg, opponent, games, seed, not sample, policy, team, dynamics=ranges
            )
            for name, ranges in sets.items()
        }
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if json_:
        print(json.dumps(games_eval_doc(dynamics, results)))
        return
    for name, result in results.items():
        r = result.as_json()
        where = "" if dynamics == "nominal" else f"{name}: "
        print(
            f"{where}{result.games} games vs {opponent}: win {r['win_rate']:.1%} draw "
            f"{r['draw_rate']:.1%} loss {r['loss_rate']:.1%} (policy v{result.policy_version})"
        )


@app.command()
def replay(
    run_dir: Path,
    out: Annotated[Path, typer.Option(help="the video to write: .gif or .mp4")],
    opponent: Annotated[
        str, typer.Option(help="random | tactical | charge | still | snapshot:ID")
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
    from actors.inference import limit_inference_threads
    from actors.replay import replay as replay_games
    from core.checkpoints import CheckpointError

    limit_inference_threads(1)  # as in `eval`: single-observation forward passes

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

    arm_stop_signals()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@config_app.command("show")
def config_show(config: Path, set_: SetOption = None) -> None:
    """Print the resolved config (defaults filled in, overrides applied), after the checks
    `selfplay run` makes before it starts."""
    from cluster.checks import check_job

    cfg = _load(config, set_)
    try:
        check_job(cfg)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    sys.stdout.write(dump_config(cfg))


# After `run` and the others, so `selfplay --help` lists the local commands first.
register_job_commands(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
