"""The proto is the contract: a client generated from league/league.proto, in another
process that cannot import the project, registers players, reports results (with
duplicates and invalid ones) and reads ratings that match a computation written here
from the model in league/ratings.py's docstring, not with its code."""

from __future__ import annotations

import importlib.resources
import json
import math
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_expit

from league.server import LeagueServer

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "league" / "league.proto"
TOKEN = "proto-client-token"
ANCHOR = "random"
ELO_PER_NAT = 400.0 / math.log(10.0)
Z95 = 1.959963984540054

# The standalone client: generic over the plan (each call an RPC name, a request as
# JSON and which token to send), so every expectation lives in the test below.
CLIENT = textwrap.dedent(
    """
    import importlib.util
    import json
    import sys

    import grpc
    from google.protobuf import json_format

    import league_pb2
    import league_pb2_grpc

    address, token, plan_path = sys.argv[1:4]
    # Proof that this process talks to the server only through the generated code.
    for package in ("league", "cluster", "actors", "learner", "envs"):
        assert importlib.util.find_spec(package) is None, f"project package {package} visible"

    stub = league_pb2_grpc.LeagueStub(grpc.insecure_channel(address))
    tokens = {"good": token, "wrong": token + "-not", "none": None}
    out = []
    for call in json.load(open(plan_path)):
        rpc = getattr(stub, call["rpc"])
        request = json_format.ParseDict(
            call["request"], getattr(league_pb2, call["rpc"] + "Request")()
        )
        secret = tokens[call["token"]]
        metadata = [("authorization", "Bearer " + secret)] if secret is not None else []
        try:
            reply = rpc(request, metadata=metadata, timeout=10)
        except grpc.RpcError as err:
            out.append({"code": err.code().name, "details": err.details()})
            continue
        body = json_format.MessageToDict(
            reply, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
        )
        out.append({"code": "OK", "reply": body})
    print(json.dumps(out))
    """
)


def call(rpc: str, request: dict[str, Any], expect: str = "OK", token: str = "good") -> dict:
    return {"rpc": rpc, "request": request, "token": token, "expect": expect}


def report(
    match_id: str, a: str, b: str, outcome: str | None, kind: str = "MATCH_KIND_EVAL"
) -> dict[str, Any]:
    request: dict[str, Any] = {"match_id": match_id, "player_a": a, "player_b": b, "kind": kind}
    if outcome is not None:  # None leaves the outcome unset (OUTCOME_UNSPECIFIED)
        request["outcome"] = outcome
    return request


FROZEN = [ANCHOR, "bot-a", "main@v1", "main@v2", "main@v3"]
STRENGTH = {ANCHOR: 0.0, "bot-a": -1.0, "main@v1": 0.3, "main@v2": 0.8, "main@v3": 1.6}
OUTCOMES = ("OUTCOME_A_WIN", "OUTCOME_DRAW", "OUTCOME_B_WIN")


def build_plan() -> tuple[list[dict], list[tuple[str, str, str, str]]]:
    """The calls to make, and the results the league should end up holding
    (match_id, a, b, outcome), derived from the plan's own rules, not from replies."""
    rng = np.random.default_rng(7)
    plan = [
        call("RegisterPlayer", {"name": "bot-a", "kind": "PLAYER_KIND_BUILTIN"}),
        call("RegisterPlayer", {"name": "main", "kind": "PLAYER_KIND_LEARNER"}),
        # Idempotent by name; another kind under the same name is refused.
        call("RegisterPlayer", {"name": "bot-a", "kind": "PLAYER_KIND_BUILTIN"}),
        call("RegisterPlayer", {"name": "main", "kind": "PLAYER_KIND_BUILTIN"}, "ALREADY_EXISTS"),
        call(
            "RegisterPlayer",
            {"name": "bad name!", "kind": "PLAYER_KIND_BUILTIN"},
            "INVALID_ARGUMENT",
        ),
        *(call("RegisterSnapshot", {"lineage": "main", "version": v}) for v in (1, 2, 3, 9)),
        call("RegisterSnapshot", {"lineage": "ghost", "version": 1}, "NOT_FOUND"),
    ]
    applied: list[tuple[str, str, str, str]] = []
    sent: list[dict[str, Any]] = []
    for k in range(90):
        i, j = rng.choice(len(FROZEN), size=2, replace=False)
        a, b = FROZEN[i], FROZEN[j]
        if "bot-a" in (a, b):  # bot-a never scores: only the prior keeps it finite
            outcome = "OUTCOME_B_WIN" if a == "bot-a" else "OUTCOME_A_WIN"
        else:
            p = 1.0 / (1.0 + math.exp(STRENGTH[b] - STRENGTH[a]))
            d = 0.6 * min(p, 1.0 - p)  # draws, symmetric around the expected score
            u = rng.random()
            outcome = (
                OUTCOMES[0] if u < p - d / 2 else OUTCOMES[1] if u < p + d / 2 else OUTCOMES[2]
            )
        sent.append(report(f"eval-{k:03d}", a, b, outcome))
        applied.append((f"eval-{k:03d}", a, b, outcome))
    for k in range(12):  # training games of the learner: stored, never rated
        opponent = FROZEN[k % len(FROZEN)]
        request = report(f"train-{k:02d}", "main", opponent, OUTCOMES[k % 3], "MATCH_KIND_TRAINING")
        request["a_version"] = k
        sent.append(request)
        applied.append((f"train-{k:02d}", "main", opponent, OUTCOMES[k % 3]))
    plan += [call("ReportResult", r) for r in sent]

    # Repeats, exact and conflicting (another outcome, swapped sides): both duplicates.
    for r in sent[:5]:
        plan.append(call("ReportResult", dict(r)))
    flipped = dict(
        sent[5],
        outcome="OUTCOME_B_WIN" if sent[5]["outcome"] != "OUTCOME_B_WIN" else "OUTCOME_A_WIN",
    )
    swapped = dict(sent[6], player_a=sent[6]["player_b"], player_b=sent[6]["player_a"])
    plan += [call("ReportResult", flipped), call("ReportResult", swapped)]

    # Invalid reports record nothing: their ids stay free for a later valid report.
    invalid = [
        (report("bad-ghost", "main@v1", "ghost", "OUTCOME_A_WIN"), "NOT_FOUND"),
        (report("bad-ghost", "ghost", "main@v1", "OUTCOME_A_WIN"), "NOT_FOUND"),
        (report("bad id with spaces", "main@v1", "random", "OUTCOME_A_WIN"), "INVALID_ARGUMENT"),
        (report("x" * 129, "main@v1", "random", "OUTCOME_A_WIN"), "INVALID_ARGUMENT"),
        (report("", "main@v1", "random", "OUTCOME_A_WIN"), "INVALID_ARGUMENT"),
        (report("bad-no-outcome", "main@v1", "random", None), "INVALID_ARGUMENT"),
        (
            {
                **report("bad-no-kind", "main@v1", "random", "OUTCOME_DRAW"),
                "kind": "MATCH_KIND_UNSPECIFIED",
            },
            "INVALID_ARGUMENT",
        ),
    ]
    plan += [call("ReportResult", r, code) for r, code in invalid]
    # Without the token (or with a wrong one) nothing is read or written.
    unauth = report("unauth-1", "main@v2", "random", "OUTCOME_A_WIN")
    plan += [
        call("ReportResult", unauth, "UNAUTHENTICATED", token="none"),
        call("ReportResult", unauth, "UNAUTHENTICATED", token="wrong"),
        call("GetRatings", {}, "UNAUTHENTICATED", token="none"),
        call(
            "RegisterPlayer",
            {"name": "sneaky", "kind": "PLAYER_KIND_BUILTIN"},
            "UNAUTHENTICATED",
            token="wrong",
        ),
    ]
    for r in (report("bad-no-outcome", "main@v1", "random", "OUTCOME_B_WIN"), unauth):
        plan.append(call("ReportResult", r))
        applied.append((r["match_id"], r["player_a"], r["player_b"], r["outcome"]))
    plan += [call("GetRatings", {}), call("ListPlayers", {})]
    return plan, applied


def independent_ratings(
    results: list[tuple[str, str, str, str]], frozen: set[str]
) -> dict[str, dict[str, float]]:
    """MAP Bradley-Terry over games between frozen players: draws are half wins, one
    virtual draw of every rated player against the anchor, anchor fixed at 0; 95%
    intervals from the numerically differentiated curvature of the log-posterior."""
    score_a = {"OUTCOME_A_WIN": 1.0, "OUTCOME_DRAW": 0.5, "OUTCOME_B_WIN": 0.0}
    rated = [(a, b, score_a[o]) for _, a, b, o in results if a in frozen and b in frozen]
    players = sorted({p for a, b, _ in rated for p in (a, b)} - {ANCHOR})
    col = {p: k for k, p in enumerate(players)}

    def strengths(x: np.ndarray, p: str) -> float:
        return 0.0 if p == ANCHOR else float(x[col[p]])

    def neg_log_posterior(x: np.ndarray) -> float:
        total = sum(
            s * log_expit(strengths(x, a) - strengths(x, b))
            + (1.0 - s) * log_expit(strengths(x, b) - strengths(x, a))
            for a, b, s in rated
        )
        total += float(np.sum(0.5 * log_expit(x) + 0.5 * log_expit(-x)))  # the prior draws
        return -total

    def gradient(x: np.ndarray, h: float = 1e-6) -> np.ndarray:
        return np.array(
            [
                (neg_log_posterior(x + h * e) - neg_log_posterior(x - h * e)) / (2 * h)
                for e in np.eye(len(x))
            ]
        )

    best = minimize(
        neg_log_posterior,
        np.zeros(len(players)),
        jac=gradient,
        method="BFGS",
        options={"gtol": 1e-9},
    )
    assert best.success or np.max(np.abs(gradient(best.x))) < 1e-6, best.message
    step = 1e-4
    hessian = np.array(
        [
            (gradient(best.x + step * e) - gradient(best.x - step * e)) / (2 * step)
            for e in np.eye(len(players))
        ]
    )
    cov = np.linalg.inv((hessian + hessian.T) / 2)
    out = {ANCHOR: {"elo": 0.0, "half": 0.0}}
    for p in players:
        out[p] = {
            "elo": best.x[col[p]] * ELO_PER_NAT,
            "half": Z95 * math.sqrt(cov[col[p], col[p]]) * ELO_PER_NAT,
        }
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """league_pb2.py and league_pb2_grpc.py generated from the proto, plus the client."""
    out = tmp_path_factory.mktemp("proto_client")
    (out / "league.proto").write_bytes(PROTO.read_bytes())  # top-level module names
    include = importlib.resources.files("grpc_tools") / "_proto"  # timestamp.proto
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{out}",
            f"-I{include}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            str(out / "league.proto"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (out / "client.py").write_text(CLIENT)
    return out


def run_client(folder: Path, address: str, plan: list[dict]) -> list[dict]:
    (folder / "plan.json").write_text(json.dumps(plan))
    # -S: no site processing, so the project's editable install (a .pth hook) is not
    # on the path; grpc and protobuf come from their own site-packages directory only.
    site_packages = Path(grpc.__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-S", "client.py", address, TOKEN, "plan.json"],
        cwd=folder,
        env={"PYTHONPATH": str(site_packages), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_generated_client_in_another_process(generated: Path, tmp_path: Path) -> None:
    plan, applied = build_plan()
    server = LeagueServer(tmp_path / "league.db", token=TOKEN)
    server.start()
    try:
        replies = run_client(generated, server.address, plan)
    finally:
        server.stop(0)
    assert len(replies) == len(plan)

    # Every call answered with the status the contract promises.
    codes = [(c["rpc"], c["expect"]) for c in plan]
    assert [(c["rpc"], r["code"]) for c, r in zip(plan, replies, strict=True)] == codes
    for r in replies:
        if r["code"] != "OK":
            assert TOKEN not in r["details"]  # statuses never echo the secret

    # Reports: the first of each id applies, repeats (even conflicting ones) are duplicates.
    seen: set[str] = set()
    for c, r in zip(plan, replies, strict=True):
        if c["rpc"] != "ReportResult" or r["code"] != "OK":
            continue
        match_id = c["request"]["match_id"]
        duplicate = match_id in seen
        seen.add(match_id)
        assert (r["reply"]["applied"], r["reply"]["duplicate"]) == (not duplicate, duplicate)
    assert seen == {m for m, *_ in applied}

    registered = [
        r["reply"]["created"]
        for c, r in zip(plan, replies, strict=True)
        if c["rpc"] == "RegisterPlayer" and r["code"] == "OK"
    ]
    assert registered == [True, True, False]
    kinds = {p["id"]: p["kind"] for p in replies[-1]["reply"]["players"]}
    assert kinds == {
        ANCHOR: "PLAYER_KIND_BUILTIN",
        "bot-a": "PLAYER_KIND_BUILTIN",
        "main": "PLAYER_KIND_LEARNER",
        "main@v1": "PLAYER_KIND_SNAPSHOT",
        "main@v2": "PLAYER_KIND_SNAPSHOT",
        "main@v3": "PLAYER_KIND_SNAPSHOT",
        "main@v9": "PLAYER_KIND_SNAPSHOT",
    }

    ratings_reply = replies[-2]["reply"]
    assert ratings_reply["anchor"] == ANCHOR
    got = {r["player_id"]: r for r in ratings_reply["ratings"]}
    assert set(got) == set(kinds)

    # Counts: rated (frozen vs frozen) games of the first report per id only, so the
    # repeats and the conflicting duplicates changed nothing.
    frozen = {p for p, k in kinds.items() if k != "PLAYER_KIND_LEARNER"}
    counts: dict[str, Counter[str]] = {p: Counter() for p in kinds}
    for _, a, b, outcome in applied:
        if a in frozen and b in frozen:
            side = {
                "OUTCOME_A_WIN": ("wins", "losses"),
                "OUTCOME_DRAW": ("draws", "draws"),
                "OUTCOME_B_WIN": ("losses", "wins"),
            }[outcome]
            counts[a][side[0]] += 1
            counts[b][side[1]] += 1
    for p, row in got.items():
        expected = counts[p]
        games = sum(expected.values())
        assert (int(row["games"]), int(row["wins"]), int(row["draws"]), int(row["losses"])) == (
            games,
            expected["wins"],
            expected["draws"],
            expected["losses"],
        ), p
        assert row["rated"] == (games > 0), p
    assert counts["bot-a"]["wins"] == counts["bot-a"]["draws"] == 0 < counts["bot-a"]["losses"]

    # Elo and intervals: the independent MAP fit.
    expected_ratings = independent_ratings(applied, frozen)
    assert set(expected_ratings) == {p for p, row in got.items() if row["rated"]}
    for p, want in expected_ratings.items():
        row = got[p]
        assert row["elo"] == pytest.approx(want["elo"], abs=0.01), p
        half = (row["ci_high"] - row["ci_low"]) / 2
        assert half == pytest.approx(want["half"], abs=0.05), p
        assert (row["ci_high"] + row["ci_low"]) / 2 == pytest.approx(row["elo"], abs=1e-6), p
    assert got[ANCHOR]["elo"] == got[ANCHOR]["ci_low"] == got[ANCHOR]["ci_high"] == 0.0
    for unrated in ("main", "main@v9"):
        assert got[unrated]["elo"] == 0.0 and not got[unrated]["rated"]
    # The ordering the contract's client shows: rated best first, then unrated.
    order = [r["player_id"] for r in ratings_reply["ratings"]]
    rated_order = sorted(expected_ratings, key=lambda p: -expected_ratings[p]["elo"])
    assert order[: len(rated_order)] == rated_order


def test_script_cannot_reach_the_project(generated: Path) -> None:
    """The isolation the test above relies on: the script's interpreter sees no project
    package, and its generated modules come from the tmp folder."""
    site_packages = Path(grpc.__file__).resolve().parents[1]
    probe = (
        "import importlib.util, league_pb2; "
        "print(importlib.util.find_spec('league'), league_pb2.__file__)"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        cwd=generated,
        env={"PYTHONPATH": str(site_packages), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    spec, module_file = proc.stdout.split()
    assert spec == "None"
    assert Path(module_file).resolve().parent == generated.resolve()
    assert re.search(r"\bleague_pb2\b", (generated / "league_pb2_grpc.py").read_text())
