""".gitlab-ci.yml: valid for GitLab, calls only commands and files that exist, and
runs the lifecycle in the right pipelines (a small evaluator of the `rules` it uses)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from deploy_helpers import REPO, in_ci

CI = dict[str, Any]
# Top-level keys that are not jobs.
GLOBAL_KEYWORDS = {
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
}
SCRIPT_KEYS = ("before_script", "script", "after_script")
REQUIRED_STAGES = [
    "lint",
    "test",
    "pipeline",
    "promote",
    "build",
    "deploy-staging",
    "smoke-staging",
    "deploy-production",
]


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """GitLab's `extends`: hashes merge deeply, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve(ci: CI, name: str) -> dict[str, Any]:
    spec = dict(ci[name])
    parents = spec.pop("extends", [])
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        merged = merge(merged, resolve(ci, parent))
    return merge(merged, spec)


def jobs(ci: CI) -> dict[str, dict[str, Any]]:
    """The jobs, with `extends` resolved."""
    return {k: resolve(ci, k) for k in ci if k not in GLOBAL_KEYWORDS and not k.startswith(".")}


def flatten(lines: Any) -> Iterator[str]:
    if isinstance(lines, str):
        yield lines
    elif isinstance(lines, list):
        for item in lines:
            yield from flatten(item)


def script_blocks(node: Any) -> Iterator[str]:
    """Every script entry anywhere in the file (jobs, hidden templates, `default`)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SCRIPT_KEYS:
                yield from flatten(value)
            else:
                yield from script_blocks(value)
    elif isinstance(node, list):
        for item in node:
            yield from script_blocks(item)


def shell_lines(ci: CI) -> list[str]:
    """Script entries as shell lines: continuations joined, comments and heredoc bodies dropped."""
    out: list[str] = []
    for block in script_blocks(ci):
        heredoc: str | None = None
        for line in block.replace("\\\n", " ").splitlines():
            if heredoc is not None:
                if line.strip() == heredoc:
                    heredoc = None
                continue
            marker = re.search(r"<<-?\s*'?\"?(\w+)", line)
            if marker:
                heredoc = marker.group(1)
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                out.append(stripped)
    return out


def heredocs(ci: CI) -> list[tuple[str, str]]:
    """(command line, body) of every heredoc in the scripts."""
    found = []
    for block in script_blocks(ci):
        lines = block.replace("\\\n", " ").splitlines()
        i = 0
        while i < len(lines):
            marker = re.search(r"<<-?\s*'?\"?(\w+)", lines[i])
            if marker:
                end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == marker[1])
                found.append((lines[i], "\n".join(lines[i + 1 : end])))
                i = end
            i += 1
    return found


def tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote inside $(...): fall back to plain words
        return line.split()


def commands(line: str) -> Iterator[list[str]]:
    """The simple commands in a line, split at shell operators."""
    current: list[str] = []
    for tok in tokens(line):
        if tok and set(tok) <= set(";&|()<>"):
            if current:
                yield current
            current = []
        else:
            current.append(tok)
    if current:
        yield current


def hatbot_calls(ci: CI) -> list[list[str]]:
    """The argument lists of every `hatbot ...` command in the scripts."""
    calls = []
    for line in shell_lines(ci):
        for cmd in commands(line):
            words = [w for w in cmd if not re.match(r"^[A-Z_][A-Z0-9_]*=", w)]  # env prefixes
            if words[:2] == ["poetry", "run"]:
                words = words[2:]
            if words and words[0] == "hatbot":
                calls.append(words[1:])
    return calls


def poetry_run_programs(ci: CI) -> set[str]:
    programs = set()
    for line in shell_lines(ci):
        for cmd in commands(line):
            for i in range(len(cmd) - 2):
                if cmd[i : i + 2] == ["poetry", "run"]:
                    programs.add(cmd[i + 2])
    return programs


def referenced_paths(ci: CI) -> set[str]:
    """Files the scripts run or read: `bash X`, `python3 X`, `-k X`, `--file X`, repo paths."""
    paths = set()
    for line in shell_lines(ci):
        for cmd in commands(line):
            for i, word in enumerate(cmd):
                nxt = cmd[i + 1] if i + 1 < len(cmd) else ""
                runs = word in {"bash", "sh", "python", "python3", "source", "."}
                reads = word in {"-k", "--kustomize", "--file", "-f", "-c"}
                if (runs or reads) and nxt and nxt != "-" and not nxt.startswith(("-", "$")):
                    paths.add(nxt)
                if re.match(r"^(deploy|scripts|src|tests|docs)/", word):
                    paths.add(word)
                if word in {"Dockerfile", ".gitlab-ci.yml"}:
                    paths.add(word)
    return {p for p in paths if "$" not in p and not p.startswith("/")}


# --- a small evaluator of the `rules:` this file uses --------------------------------


def _value(term: str, env: dict[str, str]) -> str | None:
    term = term.strip()
    if term.startswith("$"):
        return env.get(term[1:])
    if term == "null":
        return None
    return term.strip("\"'")


def condition(expr: str, env: dict[str, str]) -> bool:
    assert "||" not in expr and "=~" not in expr, f"the test evaluator does not know {expr!r}"
    result = True
    for term in expr.split("&&"):
        m = re.match(r"^\s*(\S+)\s*(==|!=)\s*(\S+)\s*$", term)
        if m:
            left, op, right = _value(m.group(1), env), m.group(2), _value(m.group(3), env)
            result &= (left == right) if op == "==" else (left != right)
        else:
            result &= bool(_value(term, env))
    return result


def decide(rules: list[dict[str, Any]] | None, env: dict[str, str]) -> str | None:
    """`when` of the first matching rule (changes count as matched), None when excluded."""
    if rules is None:
        return "on_success"
    for rule in rules:
        if "if" in rule and not condition(rule["if"], env):
            continue
        return str(rule.get("when", "on_success"))
    return None


PIPELINES = {
    "merge_request": {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_DEFAULT_BRANCH": "main",
        "CI_MERGE_REQUEST_IID": "7",
    },
    "push_main": {
        "CI_PIPELINE_SOURCE": "push",
        "CI_COMMIT_BRANCH": "main",
        "CI_DEFAULT_BRANCH": "main",
    },
    "schedule": {
        "CI_PIPELINE_SOURCE": "schedule",
        "CI_COMMIT_BRANCH": "main",
        "CI_DEFAULT_BRANCH": "main",
    },
    "push_feature": {
        "CI_PIPELINE_SOURCE": "push",
        "CI_COMMIT_BRANCH": "feature",
        "CI_DEFAULT_BRANCH": "main",
    },
}


def pipeline(ci: CI, name: str) -> dict[str, str]:
    """Which jobs a kind of pipeline creates, and how (`on_success`, `manual`, ...)."""
    env = PIPELINES[name]
    if decide(ci.get("workflow", {}).get("rules"), env) in {None, "never"}:
        return {}
    created = {}
    for job, spec in jobs(ci).items():
        when = decide(spec.get("rules"), env)
        if when not in {None, "never"}:
            created[job] = when
    return created


# --- tests ---------------------------------------------------------------------------


def test_validate_gitlab_ci_against_gitlab_schema() -> None:
    exe = shutil.which("check-jsonschema")
    cmd = [exe] if exe else [sys.executable, "-m", "check_jsonschema"]
    out = subprocess.run(
        [*cmd, "--builtin-schema", "vendor.gitlab-ci", str(REPO / ".gitlab-ci.yml")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_stages_follow_lifecycle(gitlab_ci: CI) -> None:
    stages = gitlab_ci["stages"]
    assert [s for s in stages if s in REQUIRED_STAGES] == REQUIRED_STAGES
    for name, job in jobs(gitlab_ci).items():
        assert job.get("stage", "test") in stages, name


def test_needs_reference_existing_jobs(gitlab_ci: CI) -> None:
    all_jobs = jobs(gitlab_ci)
    stages = gitlab_ci["stages"]
    for name, job in all_jobs.items():
        for need in job.get("needs", []):
            needed = need if isinstance(need, str) else need["job"]
            assert needed in all_jobs, f"{name} needs a job that does not exist: {needed}"
            assert stages.index(all_jobs[needed]["stage"]) <= stages.index(job["stage"]), name


def test_dotenv_variables_reach_their_jobs(gitlab_ci: CI) -> None:
    """A job that reads $MODEL_VERSION, $PROMOTED ... needs a job whose dotenv report sets it."""
    all_jobs = jobs(gitlab_ci)
    produced: dict[str, set[str]] = {}
    for name, job in all_jobs.items():
        if job.get("artifacts", {}).get("reports", {}).get("dotenv"):
            text = "\n".join(flatten(job.get("script")))
            produced[name] = set(re.findall(r'echo "([A-Z_]+)=', text))
            assert produced[name], f"{name} has a dotenv report but writes no variable"
    dotenv_vars = set().union(*produced.values())
    for name, job in all_jobs.items():
        text = "\n".join(flatten(job.get("script")))
        assigned = set(re.findall(r"^\s*([A-Z_]+)=", text, flags=re.MULTILINE))
        used = {v for v in re.findall(r"\$\{?([A-Z_]+)", text) if v in dotenv_vars} - assigned
        needs = {n if isinstance(n, str) else n["job"] for n in job.get("needs", [])}
        for var in used:
            assert any(var in produced.get(n, set()) for n in needs), (
                f"{name} uses ${var} but needs no job whose dotenv sets it"
            )


def test_cli_commands_exist(gitlab_ci: CI) -> None:
    """Every `hatbot <command> [--option]` in the scripts is a real command of the CLI."""
    try:
        import typer

        from hatbot.cli import app  # type: ignore[import-untyped,unused-ignore]
    except ImportError as err:
        if in_ci():
            pytest.fail(f"hatbot.cli cannot be imported: {err}")
        pytest.skip(f"hatbot.cli cannot be imported yet: {err}")
    # typer's click conversion; typer >= 0.19 vendors click, so groups are found by shape.
    root: Any = typer.main.get_command(app)
    calls = hatbot_calls(gitlab_ci)
    used = {" ".join(w for w in call if not w.startswith(("-", "$"))) for call in calls}
    for expected in ("data fetch", "data add", "train", "evaluate", "promote", "smoke"):
        assert any(u.startswith(expected) for u in used), f"CI never runs `hatbot {expected}`"
    for call in calls:
        command, path, words = root, ["hatbot"], list(call)
        while isinstance(getattr(command, "commands", None), dict) and words:
            if words[0].startswith("-"):
                break
            name = words.pop(0)
            assert name in command.commands, f"`{' '.join(path)} {name}` is not a command"
            command, path = command.commands[name], [*path, name]
        if isinstance(getattr(command, "commands", None), dict):
            assert words in ([], ["--help"]), f"`{' '.join(path)}` needs a subcommand"
            continue
        options = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
        options.add("--help")
        for word in words:
            if word.startswith("--"):
                option = word.split("=", 1)[0]
                assert option in options, f"`{' '.join(path)}` has no option {option}"


def test_python_snippets_match_project_api(gitlab_ci: CI) -> None:
    """Inline Python compiles, and what it calls from `hatbot` exists with that signature."""
    snippets = [body for line, body in heredocs(gitlab_ci) if re.search(r"\bpython3? -", line)]
    assert snippets, "expected inline Python (the MLflow record of a promotion)"
    for body in snippets:
        tree = ast.parse(body)
        imported: dict[str, Any] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hatbot"):
                try:
                    module = importlib.import_module(node.module or "")
                except ImportError as err:
                    if in_ci():
                        pytest.fail(f"{node.module} cannot be imported: {err}")
                    pytest.skip(f"{node.module} cannot be imported yet: {err}")
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
                    imported[alias.asname or alias.name] = getattr(module, alias.name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                target = imported.get(node.func.id)
                if callable(target):
                    inspect.signature(target).bind(
                        *node.args, **{k.arg: k.value for k in node.keywords if k.arg}
                    )


def test_poetry_run_programs_installed(gitlab_ci: CI) -> None:
    """`poetry run X` runs something the project installs (this venv is the project's)."""
    programs = poetry_run_programs(gitlab_ci)
    assert {"ruff", "mypy", "pytest", "hatbot"} <= programs
    for program in programs:
        assert shutil.which(program), f"`poetry run {program}`: {program} is not installed"


def test_script_paths_exist(gitlab_ci: CI) -> None:
    paths = referenced_paths(gitlab_ci)
    assert "deploy/k8s/deploy.sh" in paths
    # The store client is the package's `hatbot model`, not a script beside the manifests.
    assert not any("model_store" in p for p in paths)
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, f"the CI scripts use files that do not exist: {missing}"


def test_schedule_pipeline_retrains_and_checks_reproducibility(gitlab_ci: CI) -> None:
    created = pipeline(gitlab_ci, "schedule")
    for job in (
        "data",
        "train",
        "evaluate",
        "reproducibility",
        "promote",
        "build",
        "deploy-staging",
        "smoke-staging",
    ):
        assert created.get(job) == "on_success", f"a scheduled pipeline does not run {job}"
    assert created["deploy-production"] == "manual"


def test_main_pipeline_runs_lifecycle_production_manual(gitlab_ci: CI) -> None:
    created = pipeline(gitlab_ci, "push_main")
    for job in (
        "ruff",
        "mypy",
        "pytest",
        "data",
        "train",
        "evaluate",
        "promote",
        "build",
        "deploy-staging",
        "smoke-staging",
    ):
        assert created.get(job) == "on_success", f"a push to main does not run {job}"
    assert created["deploy-production"] == "manual"
    assert created["rollback-production"] == "manual"


def test_merge_request_pipeline_never_deploys(gitlab_ci: CI) -> None:
    created = pipeline(gitlab_ci, "merge_request")
    assert {"ruff", "mypy", "pytest"} <= created.keys()
    assert not {j for j in created if j.startswith(("deploy", "rollback", "promote", "train"))}
    assert pipeline(gitlab_ci, "push_feature").keys() <= {"ruff", "mypy", "config-lint", "pytest"}


def test_reproducibility_gates_promotion(gitlab_ci: CI) -> None:
    promote = jobs(gitlab_ci)["promote"]
    (need,) = [n for n in promote["needs"] if isinstance(n, dict) and n["job"] == "reproducibility"]
    assert need["optional"] is True
    repro = jobs(gitlab_ci)["reproducibility"]
    assert not repro.get("allow_failure")
    assert all(rule.get("when") != "manual" for rule in repro["rules"]), (
        "a manual job that promote needs would block it"
    )
    script = "\n".join(flatten(repro["script"]))
    assert script.count("diff ") >= 2 and "train.threads=1" in script
    # The data store caches trained models: each run needs its own, or run b reuses run a's.
    assert '--data-dir "repro/$run/data"' in script


def test_deploy_jobs_set_image_from_commit(gitlab_ci: CI) -> None:
    all_jobs = jobs(gitlab_ci)
    assert gitlab_ci["variables"]["IMAGE_NAME"].endswith("/hatbot")
    build = "\n".join(flatten(all_jobs["build"]["script"]))
    assert '--tag "$IMAGE_NAME:$CI_COMMIT_SHA"' in build
    assert all_jobs["build"]["artifacts"]["reports"]["dotenv"] == "build.env"
    assert "IMAGE_DIGEST=" in build
    for name in ("deploy-staging", "deploy-production"):
        text = "\n".join(flatten(all_jobs[name]["script"]))
        assert "deploy/k8s/deploy.sh" in text, name
    for name in ("deploy-staging", "deploy-production", "rollback-production"):
        assert all_jobs[name]["variables"]["IMAGE_TAG"] == "$CI_COMMIT_SHA", name
    assert all_jobs["deploy-staging"]["environment"]["name"] == "staging"
    assert all_jobs["deploy-production"]["environment"]["name"] == "production"


def test_no_credentials_in_ci_file(gitlab_ci: CI) -> None:
    text = (REPO / ".gitlab-ci.yml").read_text()
    for pattern in (
        r"-----BEGIN",
        r"glpat-",
        r"certificate-authority-data",
        r"client-key-data",
        r"AKIA[0-9A-Z]{16}",
        r"password\s*[:=]\s*[^$\s]",
    ):
        assert not re.search(pattern, text, flags=re.IGNORECASE), pattern

    def check(variables: dict[str, Any] | None, where: str) -> None:
        for name, value in (variables or {}).items():
            value = value["value"] if isinstance(value, dict) else value
            if re.search(r"TOKEN|PASSWORD|SECRET|KUBE_CONFIG|HEADER|KEY", name):
                # Only references to CI/CD variables, never a literal secret.
                literal = re.sub(r"\$\{?\w+\}?", "", str(value))
                assert "$" in str(value) and not re.search(r"[A-Za-z0-9+/_-]{12,}", literal), (
                    f"{where}: {name} must come from a CI/CD variable"
                )

    check(gitlab_ci.get("variables"), "variables")
    for name, spec in gitlab_ci.items():
        if isinstance(spec, dict):
            check(spec.get("variables"), name)
    assert "KUBE_CONFIG" not in gitlab_ci.get("variables", {})


def test_image_built_once_per_commit(gitlab_ci: CI) -> None:
    """A commit's tag is pushed once and never rebuilt: a retrain is a new model, not an image."""
    build_job = jobs(gitlab_ci)["build"]
    build = "\n".join(flatten(build_job["script"]))
    # Nothing of the model reaches the image, so the schedule cannot make a new one.
    assert "MODEL_VERSION" not in build
    assert build_job["needs"] == []
    pull = build.index('docker pull "$IMAGE_NAME:$CI_COMMIT_SHA"')
    assert (
        pull < build.index("docker build") < build.index('docker push "$IMAGE_NAME:$CI_COMMIT_SHA"')
    )
    assert build.count('docker push "$IMAGE_NAME:$CI_COMMIT_SHA"') == 1
    assert "if docker pull" in build, "the push must be skipped when the tag exists"
    # Deploys take the digest from build's dotenv report.
    for name in ("deploy-staging", "deploy-production"):
        assert "build" in jobs(gitlab_ci)[name]["needs"], name
    rollback = "\n".join(flatten(jobs(gitlab_ci)["rollback-production"]["script"]))
    assert 'IMAGE_DIGEST="${image##*@}"' in rollback
