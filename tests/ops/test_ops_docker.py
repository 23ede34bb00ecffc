"""Dockerfile, .dockerignore and docker-compose.yml, validated without a Docker engine.

No engine runs on these machines, so the image is checked by hadolint and by
reading its instructions, and the compose file by the compose-spec JSON schema
and by what the stack needs (pinned images, health ordering, read-only models,
mounted files that exist).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CORPUS_URL = "http://qwone.com/~jason/20Newsgroups/20news-19997.tar.gz"
# yamllint's defaults, with room for long PromQL lines and no `---` demanded.
YAMLLINT_CONFIG = "{extends: default, rules: {line-length: {max: 130}, document-start: disable}}"


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def copy_sources(arguments: str) -> list[str] | None:
    """The build-context sources of a COPY, or None when it copies from another stage."""
    words = shlex.split(arguments)
    flags = [word for word in words if word.startswith("--")]
    if any(flag.startswith("--from=") for flag in flags):
        return None
    paths = [word for word in words if not word.startswith("--")]
    return paths[:-1]


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether Docker leaves `path` out of the build context (last matching pattern wins)."""

    def regex(pattern: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out)

    parts = path.strip("/").split("/")
    candidates = [
        "/".join(parts[: n + 1]) for n in range(len(parts))
    ]  # a dir excludes its contents
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        cleaned = pattern.lstrip("!").strip("/")
        if any(regex(cleaned).fullmatch(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


@pytest.fixture(scope="module")
def instructions(repo: Path) -> list[tuple[str, str]]:
    return dockerfile_instructions(repo / "Dockerfile")


@pytest.fixture(scope="module")
def ignore_patterns(repo: Path) -> list[str]:
    lines = (repo / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def stages(instructions: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Each named stage's instructions."""
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, arguments in instructions:
        if keyword == "FROM":
            current = []
            found[arguments.split()[-1]] = current
        current.append((keyword, arguments))
    return found


# --- Dockerfile -----------------------------------------------------------------


def test_lint_dockerfile_passes(repo: Path, require_tool: Callable[[str], str]) -> None:
    hadolint = require_tool("hadolint")
    result = subprocess.run(
        [hadolint, "Dockerfile"], cwd=repo, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_stage_installs_main_group_into_app_venv(instructions: list[tuple[str, str]]) -> None:
    build = stages(instructions)["build"]
    text = " ".join(arguments for _, arguments in build)
    assert "POETRY_VIRTUALENVS_IN_PROJECT=true" in text
    assert "poetry==" in text, "pin Poetry"
    installs = [a for k, a in build if k == "RUN" and "poetry install" in a]
    assert installs
    assert all("--only main" in a for a in installs)
    assert ("WORKDIR", "/app") in build


def test_trainer_stage_adds_train_group_and_wordnet(instructions: list[tuple[str, str]]) -> None:
    trainer = stages(instructions)["trainer"]
    text = " ".join(arguments for _, arguments in trainer)
    assert "--only main,train" in text
    assert "wordnet-base" in text
    assert "wordnet-sense-index" in text
    assert ("USER", "10001:10001") in trainer


def test_runtime_stage_is_slim_pinned_nonroot(instructions: list[tuple[str, str]]) -> None:
    args = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    runtime = stages(instructions)["runtime"]
    assert list(stages(instructions))[-1] == "runtime", "the default target must be the service"
    keywords = [k for k, _ in runtime]
    # Only the venv and code cross over from the build stage: no Poetry, no compilers.
    copies = [a for k, a in runtime if k == "COPY"]
    assert copies == ["--from=build /app/.venv /app/.venv", "--from=build /app/src /app/src"]
    assert ("USER", "10001:10001") in runtime
    assert keywords.index("USER") < keywords.index("CMD")
    env = " ".join(a for k, a in runtime if k == "ENV")
    assert "HATBOT_MODEL_STORE=/models" in env


def test_runtime_cmd_is_exec_form_serve(instructions: list[tuple[str, str]]) -> None:
    runtime = stages(instructions)["runtime"]
    (cmd,) = [a for k, a in runtime if k == "CMD"]
    assert cmd == '["hatbot", "serve"]'


def test_healthcheck_needs_no_curl_and_honours_port(instructions: list[tuple[str, str]]) -> None:
    runtime = stages(instructions)["runtime"]
    (check,) = [a for k, a in runtime if k == "HEALTHCHECK"]
    assert "CMD [" in check, "exec form"
    assert "urllib.request" in check
    assert "/readyz" in check
    assert "curl" not in check
    assert "wget" not in check
    assert "'PORT'" in check
    assert "'HATBOT_PORT'" in check


def test_copy_sources_exist_in_repo(
    repo: Path, instructions: list[tuple[str, str]], ignore_patterns: list[str]
) -> None:
    sources = [
        source
        for keyword, arguments in instructions
        if keyword in {"COPY", "ADD"}
        for source in copy_sources(arguments) or []
    ]
    assert sources, "the Dockerfile copies nothing from the context?"
    for source in sources:
        assert (repo / source).exists(), f"COPY {source}: missing in the repository"
        assert not dockerignore_excludes(ignore_patterns, source), (
            f"COPY {source}: .dockerignore drops it"
        )


@pytest.mark.parametrize(
    "path",
    [
        "models/production",
        "models/20260101-000000/vectors.npy",
        "data/raw/20news-19997.tar.gz",
        "20news-19997.tar.gz",
        "mlruns/0/meta.yaml",
        "mlflow.db",
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "src/hatbot/__pycache__/app.cpython-311.pyc",
        ".env",
    ],
)
def test_dockerignore_excludes_data_and_models(ignore_patterns: list[str], path: str) -> None:
    assert dockerignore_excludes(ignore_patterns, path)


def test_dockerignore_matcher_keeps_code(ignore_patterns: list[str]) -> None:
    # Guards the matcher above as much as the file: code must reach the image.
    for path in ["src/hatbot/cli.py", "pyproject.toml", "poetry.lock", "README.md"]:
        assert not dockerignore_excludes(ignore_patterns, path), path


# --- docker-compose.yml ---------------------------------------------------------


def test_compose_matches_schema(repo: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            "docker-compose.yml",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_defines_the_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"trainer", "bot", "prometheus", "alertmanager", "grafana"}
    assert set(compose["volumes"]) == {
        "models",
        "trainer-work",
        "prometheus-data",
        "alertmanager-data",
        "grafana-data",
    }
    ports = {name: service.get("ports", []) for name, service in services.items()}
    # Loopback unless the operator says otherwise: nothing is exposed by default.
    assert ports == {
        "trainer": [],
        "bot": ["${HATBOT_BIND:-127.0.0.1}:8000:8000"],
        "prometheus": ["${HATBOT_BIND:-127.0.0.1}:9090:9090"],
        "alertmanager": ["${HATBOT_BIND:-127.0.0.1}:9093:9093"],
        "grafana": ["${HATBOT_BIND:-127.0.0.1}:3000:3000"],
    }


def test_compose_every_service_has_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] == "CMD", f"{name}: no exec-form healthcheck"
    # The bot is healthy when alive: /readyz stays 503 while the trainer works.
    assert "/healthz" in " ".join(compose["services"]["bot"]["healthcheck"]["test"])


def test_compose_grafana_has_no_default_password(compose: dict[str, Any]) -> None:
    env = compose["services"]["grafana"]["environment"]
    password = env["GF_SECURITY_ADMIN_PASSWORD"]
    # `${VAR:?message}`: compose refuses to start without it; no fallback value.
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", password), password
    assert "admin" not in password.split("?")[0]


def test_compose_images_are_pinned(
    compose: dict[str, Any], instructions: list[tuple[str, str]]
) -> None:
    targets = set(stages(instructions))
    for name, service in compose["services"].items():
        if "build" in service:
            assert service["build"]["target"] in targets, name
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, image
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: pin {image}"


def test_compose_monitoring_starts_at_once(compose: dict[str, Any]) -> None:
    """Nothing waits for training: a failed or long first run is watched from the start."""
    services = compose["services"]
    for name in ("bot", "prometheus", "alertmanager", "grafana"):
        assert "depends_on" not in services[name], (
            f"{name} waits for {services[name]['depends_on']}"
        )
    assert services["trainer"]["build"]["target"] == "trainer"
    assert services["bot"]["build"]["target"] == "runtime"


def test_compose_mounts_models_read_only_in_bot(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["bot"]["volumes"] == ["models:/models:ro"]
    assert services["trainer"]["volumes"] == ["models:/models", "trainer-work:/work"]
    assert services["bot"]["environment"]["HATBOT_MODEL_STORE"] == "/models"
    assert services["trainer"]["environment"]["HATBOT_MODEL_STORE"] == "/models"


def test_compose_trainer_runs_pipeline_once(compose: dict[str, Any]) -> None:
    trainer = compose["services"]["trainer"]
    script = " ".join(trainer["command"])
    assert "/models/production" in script
    assert "hatbot pipeline --source" in script
    assert (
        trainer["environment"]["HATBOT_CORPUS_SOURCE"] == f"${{HATBOT_CORPUS_SOURCE:-{CORPUS_URL}}}"
    )
    assert trainer["restart"] == "no"


def test_compose_host_mounts_exist(repo: Path, compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes", {}))
    mounts = 0
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source in named:
                continue
            assert source.startswith("./"), f"{name}: {source} is neither named nor relative"
            assert (repo / source).exists(), f"{name}: {source} is not in the repository"
            mounts += 1
    assert mounts >= 4


def test_compose_mounts_prometheus_rules_where_config_finds_them(
    compose: dict[str, Any], prometheus_config: dict[str, Any], repo: Path
) -> None:
    mounts = dict(v.split(":")[:2] for v in compose["services"]["prometheus"]["volumes"])
    container_to_host = {target: source for source, target in mounts.items()}
    config_in_container = Path(mounts["./prometheus.yml"])
    for rule_file in prometheus_config["rule_files"]:
        wanted = config_in_container.parent / rule_file
        hosts = [
            repo / source / wanted.relative_to(target)
            for target, source in container_to_host.items()
            if wanted.is_relative_to(target) and source.startswith("./")
        ]
        assert any(path.is_file() for path in hosts), f"{rule_file} is not mounted at {wanted}"


def test_lint_yaml_passes(repo: Path) -> None:
    files = [
        "docker-compose.yml",
        "prometheus.yml",
        "prometheus/alerts.yml",
        "prometheus/alerts_test.yml",
        "prometheus/alerts_days_test.yml",
        "alertmanager/alertmanager.yml",
        *sorted(str(p.relative_to(repo)) for p in (repo / "grafana/provisioning").rglob("*.yml")),
    ]
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-d", YAMLLINT_CONFIG, *files],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_operations_doc_names_ports_and_login(repo: Path) -> None:
    doc = (repo / "docs" / "OPERATIONS.md").read_text(encoding="utf-8")
    for needle in [
        "8000",
        "9090",
        "9093",
        "3000",
        "127.0.0.1",
        "HATBOT_BIND",
        "GRAFANA_ADMIN_PASSWORD",
        "HATBOT_CORPUS_SOURCE",
    ]:
        assert needle in doc, needle
    assert "admin/admin" not in doc
