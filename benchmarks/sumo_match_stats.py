"""What a trained sumo policy does in its matches: distances, contact, outcomes over time.

    python benchmarks/sumo_match_stats.py runs/bug11 --opponent random --games 64

Plays `--games` games at once (one `SumoVector`, the run's env settings, seed 123) of the
run's latest checkpoint (greedy, seat 0) against `random` (uniform actions), `charge` or
`still` (zero actions), and prints the mean own and opponent distance from the ring
centre, the gap between the two, the share of games in contact and the own speed at a
few control steps (games still running), then the outcomes (winner seat, reason). A
diagnostic for why a policy draws: e.g. one that circles at a distance from a passive
opponent never touches it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.evaluation import RunDirPolicies, load_snapshot  # noqa: E402
from actors.inference import NumpyMlpPolicy  # noqa: E402
from core.config import load_config  # noqa: E402
from envs.pettingzoo_adapter import GameSpec  # noqa: E402
from envs.sumo.scripted import charge_actions  # noqa: E402
from envs.sumo.vector import SumoVector  # noqa: E402

TIMES = (0, 25, 50, 100, 200, 300, 400, 499)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--opponent", choices=("random", "charge", "still"), default="random")
    parser.add_argument("--games", type=int, default=64)
    parser.add_argument("--policy", help="a snapshot, e.g. main@v500 (default: latest checkpoint)")
    args = parser.parse_args()
    config = load_config(args.run / "config.yaml")
    vec = SumoVector(args.games, seed=123, **dict(config.env.kwargs))
    spec = GameSpec(("agent_0", "agent_1"), vec.obs_dim, vec.act_dim, False, False, True)
    policies = RunDirPolicies(args.run, config, spec, config.league.learner_player)
    net, version = policies.checkpoint()
    if args.policy:
        net, version = load_snapshot(args.run, args.policy, net), int(args.policy.split("@v")[1])
    policy = NumpyMlpPolicy(net)
    rng = np.random.default_rng(0)
    obs = vec.reset()
    names = ("own_r", "opp_r", "gap", "touch", "touched", "speed")
    series: dict[str, list[float]] = {k: [] for k in names}
    while not vec.done.all():
        actions = np.zeros((vec.num_envs, 2, vec.act_dim), np.float32)
        actions[:, 0], _ = policy.forward(obs[:, 0])  # greedy: the Gaussian's mean
        if args.opponent == "random":
            actions[:, 1] = rng.uniform(-1.0, 1.0, (vec.num_envs, vec.act_dim))
        elif args.opponent == "charge":
            actions[:, 1] = charge_actions(obs[:, 1], vec.bodies[1])
        live = ~vec.done
        obs, _, _, _ = vec.step(actions)
        series["own_r"].append(float(vec._radial[live, 0].mean()))
        series["opp_r"].append(float(vec._radial[live, 1].mean()))
        between = vec._xy[live, 0] - vec._xy[live, 1]  # torso xy of the two agents
        series["gap"].append(float(np.hypot(*between.T).mean()))
        series["touch"].append(float(vec.touching[live].mean()))
        series["touched"].append(float(vec.touched.mean()))  # all games: ever in contact
        series["speed"].append(float(np.hypot(*obs[live, 0, 7:9].T).mean()))
    outcomes = Counter(
        f"{'draw' if w < 0 else 'policy' if w == 0 else 'opponent'}: {vec.reason_name(i)}"
        for i, w in enumerate(vec.winner)
    )
    rows = {
        t: {k: round(v[t], 2) for k, v in series.items()} for t in TIMES if t < len(series["gap"])
    }
    print(
        json.dumps(
            {"version": version, "opponent": args.opponent, "outcomes": outcomes, "steps": rows}
        )
    )
    for t, row in rows.items():
        print(
            f"step {t:>3}: " + "  ".join(f"{k} {v:5.2f}" for k, v in row.items()), file=sys.stderr
        )
    print(f"v{version} vs {args.opponent}: {dict(outcomes)}", file=sys.stderr)


if __name__ == "__main__":
    main()
