"""The committed generated code must match league/league.proto."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GENERATED = ("league_pb2.py", "league_pb2_grpc.py", "league_pb2.pyi")


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{REPO}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(REPO / "league" / "league.proto"),
        ],
        check=True,
        capture_output=True,
    )
    stale = [
        name
        for name in GENERATED
        if (tmp_path / "league" / name).read_bytes() != (REPO / "league" / name).read_bytes()
    ]
    if stale:
        pytest.fail(
            f"stale generated code {stale}; regenerate from the repo root with: python -m "
            "grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. "
            "league/league.proto"
        )


def test_generated_imports_use_the_package_path() -> None:
    from league import league_pb2, league_pb2_grpc

    assert league_pb2.DESCRIPTOR.package == "selfplay.league.v1"
    assert (
        league_pb2_grpc.league__pb2 is league_pb2
        if hasattr(league_pb2_grpc, "league__pb2")
        else True
    )
    assert "League" in league_pb2.DESCRIPTOR.services_by_name
