"""CPU the league service spends per game: the driver's share of a short-game job.

    .venv/bin/python benchmarks/league_rpc.py --games 20000 --batch 64 --snapshots 0 100

A real LeagueServer (gRPC, token auth, SQLite in a temp dir) runs in this process; a child
process plays the actors' league link without the games: per round one SampleOpponents call
for `--batch` training matches and one ReportResults call with a result for each, as
`actors/league_link.py` sends them. The league starts with the learner "main", the builtins
and `--snapshots` frozen snapshots of it (a run's league grows one every 25 versions). This
process's CPU time (resource.getrusage: the gRPC threads, SQLite, the matchmaker; its main
thread only waits for the child) over the child's rounds, divided by the games, is the
figure; the child's own CPU is the client side. In a connect_four job the driver burned
~0.27 cores at ~370 games/s (BENCHMARKS.md, CPU accounting), ~0.7 ms per game.

Prints one JSON object on stdout and a readable table on stderr.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

from core.config import LeagueSettings
from league.client import LeagueClient, ResultReport
from league.server import LeagueServer


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _play(address: str, token: str, games: int, batch: int, out: multiprocessing.Queue) -> None:
    """The child: `games` matches sampled and reported in rounds of `batch`."""
    outcomes = ("a_win", "b_win", "draw")
    with LeagueClient(address, token=token) as client:
        client.wait_ready()
        start_wall, start_cpu = time.perf_counter(), _cpu_s(resource.RUSAGE_SELF)
        done = 0
        while done < games:
            matches = client.sample_opponents("main", min(batch, games - done))
            reports = [
                ResultReport(m.match_id, m.player_a, m.player_b, outcomes[k % 3], 7, steps=22)
                for k, m in enumerate(matches)
            ]
            client.report_results(reports)
            done += len(matches)
        out.put((time.perf_counter() - start_wall, _cpu_s(resource.RUSAGE_SELF) - start_cpu))


def measure(games: int, batch: int, snapshots: int, sampling: str) -> dict[str, float]:
    token = secrets.token_urlsafe(16)
    settings = LeagueSettings(
        self_play_fraction=0.5, builtins=("random", "charge"), opponent_sampling=sampling, seed=0
    )
    with tempfile.TemporaryDirectory() as tmp:
        server = LeagueServer(Path(tmp) / "league.db", token=token, settings=settings)
        server.start()
        try:
            with LeagueClient(server.address, token=token) as client:
                client.register_player("main", "learner")
                for k in range(snapshots):
                    client.register_snapshot("main", 25 * (k + 1))
            results: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
            child = multiprocessing.get_context("spawn").Process(
                target=_play, args=(server.address, token, games, batch, results)
            )
            before = _cpu_s(resource.RUSAGE_SELF)
            child.start()
            wall_s, client_cpu_s = results.get(timeout=600)
            # The child's start-up (imports, channel) is in `before`..now as idle waiting only.
            server_cpu_s = _cpu_s(resource.RUSAGE_SELF) - before
            child.join()
        finally:
            server.stop(0)
    return {
        "games": games,
        "batch": batch,
        "snapshots": snapshots,
        "sampling": sampling,
        "wall_s": round(wall_s, 3),
        "games_per_s": round(games / wall_s, 1),
        "server_cpu_s": round(server_cpu_s, 3),
        "server_us_per_game": round(1e6 * server_cpu_s / games, 1),
        "client_us_per_game": round(1e6 * client_cpu_s / games, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=64, help="matches per call (league_link)")
    parser.add_argument("--snapshots", type=int, nargs="+", default=[0, 100])
    parser.add_argument("--sampling", default="pfsp_hard", help="league opponent_sampling")
    args = parser.parse_args()
    rows = [measure(args.games, args.batch, n, args.sampling) for n in args.snapshots]
    print(json.dumps({"rows": rows}))
    print(
        f"{'snapshots':>9} {'games/s':>9} {'server µs/game':>15} {'client µs/game':>15}",
        file=sys.stderr,
    )
    for r in rows:
        print(
            f"{r['snapshots']:>9} {r['games_per_s']:>9} {r['server_us_per_game']:>15} "
            f"{r['client_us_per_game']:>15}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
