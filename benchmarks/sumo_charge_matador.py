"""How beatable is the sumo `charge` bot? Hand-written players try, per body.

- disc: a "matador" waits near the ring edge on the far side from the charger and dodges
  sideways (towards the ring centre) once the charger is within `--dodge-gaps` metres and
  closing. Two equal discs pushing head-on stall, so this is about all a disc can try.
- bug: a "flanker" drives to a point `--side-offsets` metres beside the charger (on the
  side it already is), then rams it once within `--ram-gap` metres or once it is behind the
  charger's shoulder; the charger, at full thrust, turns in a wide arc.

Prints, per setting, how the episodes ended (JSON on stdout, then a readable summary). A
yardstick for the learning runs in BENCHMARKS.md, not a player.

    .venv/bin/python benchmarks/sumo_charge_matador.py --body bug --episodes 100
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs.sumo import SumoEnv  # noqa: E402
from envs.sumo.scripted import charge_action  # noqa: E402

# Observation entries (envs/sumo/observation.py, disc and bug): own xy in the own frame,
# own velocity, the opponent's xy and velocity relative to us, its orientation quaternion.
OWN_XY, OWN_VEL, OPP_XY, OPP_VEL, OPP_QUAT = (
    slice(0, 2),
    slice(7, 9),
    slice(13, 15),
    slice(16, 18),
    slice(19, 23),
)


def matador_action(obs: np.ndarray, radius: float, dodge_gap: float, margin: float) -> np.ndarray:
    """Disc: a force in the own frame (+x towards the charger)."""
    me, rel, v_me = obs[OWN_XY], obs[OPP_XY], obs[OWN_VEL]
    closing = -float(np.dot(obs[OPP_VEL], rel / np.linalg.norm(rel)))
    if np.linalg.norm(rel) < dodge_gap and closing > 0.5:
        side = np.array([0.0, 1.0])
        return side if np.dot(side, -me) >= 0 else -side  # dodge towards the centre
    charger = me + rel
    target = -charger / max(np.linalg.norm(charger), 1e-6) * (radius - margin)
    force = 3.0 * (target - me) - v_me
    return (force / max(1.0, float(np.linalg.norm(force)))).astype(np.float32)


def flanker_action(obs: np.ndarray, side_offset: float, ram_gap: float) -> np.ndarray:
    """Bug: (thrust, turn)."""
    rel, q = obs[OPP_XY], obs[OPP_QUAT]
    yaw = 2.0 * math.atan2(float(q[3]), float(q[0]))  # the charger's heading, our frame
    c, s = math.cos(yaw), math.sin(yaw)
    me_x, me_y = c * -rel[0] + s * -rel[1], -s * -rel[0] + c * -rel[1]  # us, its frame
    behind_shoulder = abs(math.atan2(me_y, me_x)) > 1.2
    ram = np.linalg.norm(rel) < ram_gap or behind_shoulder
    if ram:
        target = rel
    else:
        side = 1.0 if me_y >= 0 else -1.0
        target = rel + side_offset * side * np.array([-s, c])
    bearing = math.atan2(float(target[1]), float(target[0]))
    thrust = 1.0 if ram or abs(bearing) < 1.0 else 0.2  # on the way: slow down to turn
    return np.array([thrust, min(1.0, max(-1.0, 3.0 * bearing))], np.float32)


def play(body: str, episodes: int, player) -> Counter[str]:  # noqa: ANN001
    env = SumoEnv(bodies=(body, body), shaping_steps=0)
    endings: Counter[str] = Counter()
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        while env.agents:
            actions = {
                "agent_0": player(obs["agent_0"], env.radius),
                "agent_1": charge_action(obs["agent_1"], body),
            }
            obs, _, _, _, infos = env.step(actions)
        winner = {"agent_0": "player", "agent_1": "charge", None: "draw"}[
            infos["agent_0"]["winner"]
        ]
        endings[f"{winner}:{infos['agent_0']['reason']}"] += 1
    return endings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--body", choices=["disc", "bug"], default="bug")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--dodge-gaps", type=float, nargs="+", default=[0.8, 1.2, 1.6])
    parser.add_argument("--margin", type=float, default=0.7, help="disc: wait this far inside")
    parser.add_argument("--side-offsets", type=float, nargs="+", default=[0.8, 1.2, 1.6])
    parser.add_argument("--ram-gap", type=float, default=0.7)
    args = parser.parse_args()
    if args.body == "disc":
        settings = {
            f"dodge at {gap:.1f} m": (lambda o, r, gap=gap: matador_action(o, r, gap, args.margin))
            for gap in args.dodge_gaps
        }
    else:
        settings = {
            f"flank {off:.1f} m aside": (lambda o, r, off=off: flanker_action(o, off, args.ram_gap))
            for off in args.side_offsets
        }
    rows = {name: play(args.body, args.episodes, player) for name, player in settings.items()}
    print(json.dumps({"body": args.body, "episodes": args.episodes, "endings": rows}))
    for name, endings in rows.items():
        print(f"{args.body} {name}: " + ", ".join(f"{k} {v}" for k, v in endings.most_common()))


if __name__ == "__main__":
    main()
