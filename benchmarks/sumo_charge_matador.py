"""How beatable is the sumo `charge` bot? A hand-written "matador" plays it.

The matador waits near the ring edge on the far side from the charger and dodges
sideways (towards the ring centre) once the charger is within `--dodge-gap` metres and
closing; the charger's momentum then carries it out. Prints, per dodge distance, how
the episodes ended. A yardstick for the learning runs in BENCHMARKS.md, not a player.

    .venv/bin/python benchmarks/sumo_charge_matador.py --episodes 100
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np

from envs.sumo import SumoEnv
from envs.sumo.scripted import charge_action


def matador_force(env: SumoEnv, dodge_gap: float, margin: float) -> np.ndarray:
    """World-frame force direction (norm <= 1) for agent_0."""
    d, (me_idx, ch_idx) = env.data, env._idx
    me, ch = d.xpos[me_idx.torso_body, :2].copy(), d.xpos[ch_idx.torso_body, :2].copy()
    v_me, v_ch = d.qvel[me_idx.lin_vel][:2], d.qvel[ch_idx.lin_vel][:2]
    rel = ch - me
    u = rel / np.linalg.norm(rel)
    closing = -float(np.dot(v_ch - v_me, u))
    if np.linalg.norm(rel) < dodge_gap and closing > 0.5:
        side = np.array([-u[1], u[0]])
        return side if np.dot(side, -me) >= 0 else -side  # dodge towards the centre
    target = -ch / max(np.linalg.norm(ch), 1e-6) * (env.radius - margin)
    force = 3.0 * (target - me) - v_me
    return force / max(1.0, float(np.linalg.norm(force)))


def to_own_frame(env: SumoEnv, force: np.ndarray) -> np.ndarray:
    """Disc actions are given in the agent's frame: +x towards the opponent."""
    d, (me_idx, ch_idx) = env.data, env._idx
    rel = d.xpos[ch_idx.torso_body, :2] - d.xpos[me_idx.torso_body, :2]
    c, s = rel / np.linalg.norm(rel)
    return np.array([c * force[0] + s * force[1], -s * force[0] + c * force[1]], np.float32)


def play(episodes: int, dodge_gap: float, margin: float) -> Counter[str]:
    env = SumoEnv(bodies=("disc", "disc"), shaping_steps=0)
    endings: Counter[str] = Counter()
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        while env.agents:
            actions = {
                "agent_0": to_own_frame(env, matador_force(env, dodge_gap, margin)),
                "agent_1": charge_action(obs["agent_1"]),
            }
            obs, _, _, _, infos = env.step(actions)
        winner = {"agent_0": "matador", "agent_1": "charge", None: "draw"}[
            infos["agent_0"]["winner"]
        ]
        endings[f"{winner}:{infos['agent_0']['reason']}"] += 1
    return endings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--dodge-gaps", type=float, nargs="+", default=[0.8, 1.2, 1.6])
    parser.add_argument("--margin", type=float, default=0.7, help="wait this far inside")
    args = parser.parse_args()
    rows = {gap: play(args.episodes, gap, args.margin) for gap in args.dodge_gaps}
    print(json.dumps({str(gap): dict(endings) for gap, endings in rows.items()}))
    for gap, endings in rows.items():
        print(f"dodge at {gap:.1f} m: " + ", ".join(f"{k} {v}" for k, v in endings.most_common()))


if __name__ == "__main__":
    main()
