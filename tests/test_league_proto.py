"""The committed generated code must match league/league.proto.

What matters is the messages and stubs, not which release of the generator wrote them: the
generator stamps its version into the code (grpcio-tools' GRPC_GENERATED_VERSION, protoc's
runtime check), and a new grpcio-tools release changes only that. So the comparison masks the
stamps, and a second test checks that each stamp asks for no newer runtime than pyproject.toml
promises, since the generated code refuses to import on an older grpcio or protobuf."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
GENERATED = ("league_pb2.py", "league_pb2_grpc.py", "league_pb2.pyi")
GRPC_STAMP = re.compile(r"^GRPC_GENERATED_VERSION = '([^']+)'$", re.M)
PROTOBUF_STAMP = re.compile(
    r"^# Protobuf Python Version: (\S+)$|"
    r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*"
    r"(\d+),\s*(\d+),\s*(\d+),",
    re.M,
)


def _masked(text: str) -> str:
    text = GRPC_STAMP.sub("GRPC_GENERATED_VERSION = '<stamp>'", text)
    return PROTOBUF_STAMP.sub("<stamp>", text)


def _floor(distribution: str) -> Version:
    """The lowest version pyproject.toml's range for `distribution` admits."""
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (requirement,) = [Requirement(d) for d in dependencies if Requirement(d).name == distribution]
    (floor,) = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    return floor


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
        if _masked((tmp_path / "league" / name).read_text())
        != _masked((REPO / "league" / name).read_text())
    ]
    if stale:
        pytest.fail(
            f"stale generated code {stale}; regenerate from the repo root with: python -m "
            "grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. "
            "league/league.proto"
        )


def test_masking_keeps_everything_but_the_stamps() -> None:
    grpc_code = (REPO / "league" / "league_pb2_grpc.py").read_text()
    assert _masked(grpc_code) != grpc_code
    assert _masked(grpc_code.replace("1.85", "1.99")) == _masked(grpc_code)
    assert _masked(grpc_code.replace("RegisterPlayer", "RegisterPlayerX")) != _masked(grpc_code)
    pb2_code = (REPO / "league" / "league_pb2.py").read_text()
    assert len(PROTOBUF_STAMP.findall(pb2_code)) == 2  # the comment and the runtime check
    assert _masked(pb2_code.replace("league.v1", "league.v2")) != _masked(pb2_code)


def test_generated_code_runs_on_the_oldest_runtime_pyproject_allows() -> None:
    grpc_code = (REPO / "league" / "league_pb2_grpc.py").read_text()
    (grpc_stamp,) = GRPC_STAMP.findall(grpc_code)
    assert Version(grpc_stamp) <= _floor("grpcio"), (
        f"league_pb2_grpc.py needs grpcio>={grpc_stamp}: raise grpcio's floor in "
        "pyproject.toml (and re-lock: deploy/lock.sh)"
    )
    pb2_code = (REPO / "league" / "league_pb2.py").read_text()
    for match in PROTOBUF_STAMP.finditer(pb2_code):
        stamp = match.group(1) or ".".join(match.group(2, 3, 4))
        assert Version(stamp) <= _floor("protobuf"), (
            f"league_pb2.py needs protobuf>={stamp}: raise protobuf's floor in pyproject.toml"
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
