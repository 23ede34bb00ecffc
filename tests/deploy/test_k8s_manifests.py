"""deploy/k8s: every overlay renders with `kubectl kustomize` and validates offline
(kubernetes-validate, strict), and the manifests keep the service's contract."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from deploy_helpers import (
    K8S,
    KUBERNETES_VERSION,
    OLDEST_KUBERNETES,
    OVERLAYS,
    REPO,
    find,
    kustomize,
)

Docs = dict[str, list[dict[str, Any]]]
# What each overlay promises: its namespace, pointer and autoscaling bounds.
EXPECTED = {
    "staging": {"namespace": "hatbot-staging", "pointer": "staging", "min": 1, "max": 2},
    "production": {"namespace": "hatbot-production", "pointer": "production", "min": 3, "max": 10},
}


def validate_all(docs: list[dict[str, Any]]) -> None:
    """Strict validation against the oldest supported, the reference and the newest schemas."""
    assert docs, "nothing rendered"
    versions = {OLDEST_KUBERNETES, KUBERNETES_VERSION, kubernetes_validate.latest_version()}
    for version in sorted(versions):
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = find(docs, "Deployment", "hatbot")["spec"]["template"]["spec"]
    return spec


def container(docs: list[dict[str, Any]], name: str = "hatbot") -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in pod_spec(docs)["containers"] if c["name"] == name]
    assert len(found) == 1, f"expected one container {name}"
    return found[0]


def dockerfile_port() -> int:
    """The port the Dockerfile EXPOSEs (8000, the contract's, when there is no Dockerfile yet)."""
    dockerfile = REPO / "Dockerfile"
    if not dockerfile.exists():
        return 8000
    text = dockerfile.read_text()
    ports = re.findall(r"^\s*EXPOSE\s+(\d+)", text, flags=re.MULTILINE | re.IGNORECASE)
    assert len(set(ports)) == 1, f"expected one EXPOSEd port in the Dockerfile, found {ports}"
    return int(ports[0])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_render_overlay_validates(rendered: Docs, overlay: str) -> None:
    docs = rendered[overlay]
    validate_all(docs)
    kinds = {d["kind"] for d in docs}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
    } <= kinds


def test_validate_broken_manifest_rejected(rendered: Docs) -> None:
    """The validation is not vacuous: a misspelt field fails it."""
    deployment = copy.deepcopy(find(rendered["production"], "Deployment", "hatbot"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_point_at_health_endpoints(rendered: Docs, overlay: str) -> None:
    bot = container(rendered[overlay])
    assert bot["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert bot["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert bot["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert bot[probe]["httpGet"]["port"] == "http"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_container_port_matches_dockerfile_expose(rendered: Docs, overlay: str) -> None:
    docs = rendered[overlay]
    port = dockerfile_port()
    bot = container(docs)
    assert [p["containerPort"] for p in bot["ports"] if p["name"] == "http"] == [port]
    env = {e["name"]: e.get("value") for e in bot["env"]}
    assert env["HATBOT_PORT"] == str(port)
    annotations = find(docs, "Deployment", "hatbot")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    service = find(docs, "Service", "hatbot")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_image_name_consistent(rendered: Docs, overlay: str) -> None:
    """One image, named `hatbot`, for the bot and its model-fetching initContainer."""
    spec = pod_spec(rendered[overlay])
    images = {c["image"] for c in spec["containers"] + spec["initContainers"]}
    assert len(images) == 1, images
    (image,) = images
    name, _, tag = image.rpartition(":")
    assert name.rsplit("/", 1)[-1] == "hatbot"
    assert tag and tag != "latest"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_security_context_non_root_read_only(rendered: Docs, overlay: str) -> None:
    spec = pod_spec(rendered[overlay])
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    assert spec["automountServiceAccountToken"] is False
    for c in spec["containers"] + spec["initContainers"]:
        ctx = c["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True, c["name"]
        assert ctx["allowPrivilegeEscalation"] is False, c["name"]
        assert ctx["capabilities"]["drop"] == ["ALL"], c["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_resources_requests_and_limits_set(rendered: Docs, overlay: str) -> None:
    spec = pod_spec(rendered[overlay])
    for c in spec["containers"] + spec["initContainers"]:
        assert {"cpu", "memory"} <= c["resources"]["requests"].keys(), c["name"]
        assert "memory" in c["resources"]["limits"], c["name"]
    bot = container(rendered[overlay])
    assert bot["resources"]["requests"]["memory"] == "256Mi"
    assert bot["resources"]["limits"]["memory"] == "512Mi"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rollout_never_drops_capacity(rendered: Docs, overlay: str) -> None:
    deployment = find(rendered[overlay], "Deployment", "hatbot")
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    # The HPA owns the replica count; an apply must not reset it.
    assert "replicas" not in deployment["spec"]
    pdb = find(rendered[overlay], "PodDisruptionBudget", "hatbot")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"], "an empty selector matches every pod"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_sets_namespace_pointer_and_bounds(rendered: Docs, overlay: str) -> None:
    docs = rendered[overlay]
    want = EXPECTED[overlay]
    assert {d["metadata"].get("namespace") for d in docs} == {want["namespace"]}
    config = next(d for d in docs if d["metadata"]["name"].startswith("hatbot-config-"))
    assert config["data"]["HATBOT_MODEL_POINTER"] == want["pointer"]
    hpa = find(docs, "HorizontalPodAutoscaler", "hatbot")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (want["min"], want["max"])
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "hatbot",
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_init_container_fetches_model_into_shared_volume(rendered: Docs, overlay: str) -> None:
    docs = rendered[overlay]
    spec = pod_spec(docs)
    (init,) = spec["initContainers"]
    bot = container(docs)
    mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    assert mounts["/models"] == "models"
    # The package's own command, from the image: no script shipped beside it.
    assert init["command"] == ["hatbot", "model"]
    assert init["image"] == bot["image"]
    assert init["args"] == [
        "fetch",
        "--dest=/models",
        "--version=$(MODEL_VERSION)",
        "--pointer=$(HATBOT_MODEL_POINTER)",
    ]
    init_env = {e["name"] for e in init["env"]}
    assert {"MODEL_STORE_URL", "MODEL_VERSION", "HATBOT_MODEL_POINTER"} <= init_env
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes["models"]
    assert not [v for v in spec["volumes"] if "configMap" in v], "no code in ConfigMaps"
    configs = [d for d in docs if d["kind"] == "ConfigMap"]
    assert [c["metadata"]["name"].startswith("hatbot-config-") for c in configs] == [True]
    bot_mounts = {m["mountPath"]: m for m in bot["volumeMounts"]}
    assert bot_mounts["/models"]["name"] == "models" and bot_mounts["/models"]["readOnly"]
    env = {e["name"]: e.get("value") for e in bot["env"]}
    assert env["HATBOT_MODEL_STORE"] == "/models"


def render_deploy(env: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(K8S / "deploy.sh"), env, "--render"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], **variables},
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_render_deploy_script_pins_image_and_model(kubectl: str, overlay: str) -> None:
    """What CI applies: the overlay plus the commit's image and the model version."""
    out = render_deploy(
        overlay,
        IMAGE_NAME="registry.example.org/group/project/hatbot",
        IMAGE_TAG="0123456789abcdef",
        MODEL_VERSION="abc123def456",
        MODEL_STORE_URL="https://store.example.org/hatbot-models",
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    validate_all(docs)
    spec = pod_spec(docs)
    assert {c["image"] for c in spec["containers"] + spec["initContainers"]} == {
        "registry.example.org/group/project/hatbot:0123456789abcdef"
    }
    config = next(d for d in docs if d["metadata"]["name"].startswith("hatbot-config-"))
    assert config["data"]["MODEL_VERSION"] == "abc123def456"
    assert config["data"]["MODEL_STORE_URL"] == "https://store.example.org/hatbot-models"
    assert config["data"]["HATBOT_MODEL_POINTER"] == EXPECTED[overlay]["pointer"]
    assert {d["metadata"].get("namespace") for d in docs} == {EXPECTED[overlay]["namespace"]}
    refs = {
        e["valueFrom"]["configMapKeyRef"]["name"]
        for c in spec["containers"] + spec["initContainers"]
        for e in c["env"]
        if "configMapKeyRef" in e.get("valueFrom", {})
    }
    assert refs == {config["metadata"]["name"]}
    assert not list(K8S.glob(".deploy-*")), "deploy.sh left its work folder behind"


def test_render_deploy_script_pins_digest(kubectl: str) -> None:
    """CI deploys by digest: every container runs exactly the image built for the commit."""
    digest = "sha256:" + "0123456789abcdef" * 4
    out = render_deploy(
        "production",
        IMAGE_NAME="registry.example.org/group/project/hatbot",
        IMAGE_TAG="0123456789abcdef",
        IMAGE_DIGEST=digest,
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    validate_all(docs)
    spec = pod_spec(docs)
    assert {c["image"] for c in spec["containers"] + spec["initContainers"]} == {
        f"registry.example.org/group/project/hatbot@{digest}"
    }


@pytest.mark.parametrize(
    "variables",
    [
        {"IMAGE_TAG": "abc"},  # no IMAGE_NAME
        {"IMAGE_NAME": "r.example.org/hatbot", "IMAGE_TAG": "abc", "IMAGE_DIGEST": "sha256:x"},
        {"IMAGE_NAME": "registry.example.org/other", "IMAGE_TAG": "abc"},
        {"IMAGE_NAME": "r.example.org/hatbot", "IMAGE_TAG": "abc\nkind: Secret"},
        {"IMAGE_NAME": "r.example.org/hatbot", "IMAGE_TAG": "abc", "MODEL_VERSION": "../x"},
    ],
)
def test_render_deploy_script_bad_input_refused(kubectl: str, variables: dict[str, str]) -> None:
    out = render_deploy("staging", **variables)
    assert out.returncode != 0
    assert out.stdout == ""


def test_render_deploy_script_unknown_environment_refused(kubectl: str) -> None:
    out = render_deploy("qa", IMAGE_NAME="r.example.org/hatbot", IMAGE_TAG="abc")
    assert out.returncode == 2 and "unknown environment" in out.stderr


def test_render_podmonitor_component(kubectl: str, tmp_path: Path) -> None:
    """The optional PodMonitor (Prometheus Operator) selects the bot's pods and port."""
    work = K8S / ".test-podmonitor"
    work.mkdir(exist_ok=True)
    try:
        (work / "kustomization.yaml").write_text(
            "resources: [../overlays/production]\ncomponents: [../components/podmonitor]\n"
        )
        docs = kustomize(kubectl, work)
    finally:
        (work / "kustomization.yaml").unlink(missing_ok=True)
        work.rmdir()
    monitor = find(docs, "PodMonitor", "hatbot")
    deployment = find(docs, "Deployment", "hatbot")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    assert {"targetLabel": "job", "replacement": "hatbot"} in endpoint["relabelings"]


def test_lint_yaml_files_clean() -> None:
    """yamllint (the project's dev tool) on the CI file and the manifests."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "yamllint",
            "--strict",
            "-c",
            "deploy/k8s/yamllint.yaml",
            ".gitlab-ci.yml",
            "deploy/k8s",
        ],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


FAKE_KUBECTL = """#!/usr/bin/env bash
# Renders with the real kubectl; records every other call; fails `rollout status` on demand.
if [ "$1" = kustomize ]; then exec "$REAL_KUBECTL" "$@"; fi
printf '%s\\n' "$*" >> "$CALLS"
case "$*" in
  *"rollout status"*) [ -f "$FAIL_ROLLOUT" ] && { rm -f "$FAIL_ROLLOUT"; exit 1; }; exit 0 ;;
  *"create secret"*) echo "kind: Secret" ;;
  *"apply -f -"*) cat > /dev/null ;;
  *"get deployment"*) echo "r.example.org/hatbot:abc" ;;
esac
exit 0
"""


def run_deploy_apply(
    kubectl: str, tmp_path: Path, fail_rollout: bool, **variables: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    fake = tmp_path / "kubectl"
    fake.write_text(FAKE_KUBECTL)
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    flag = tmp_path / "fail-rollout"
    if fail_rollout:
        flag.touch()
    out = subprocess.run(
        ["bash", str(K8S / "deploy.sh"), "production"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": os.environ["PATH"],
            "KUBECTL": str(fake),
            "REAL_KUBECTL": kubectl,
            "CALLS": str(calls),
            "FAIL_ROLLOUT": str(flag),
            "IMAGE_NAME": "r.example.org/hatbot",
            "IMAGE_TAG": "abc",
            "MODEL_VERSION": "abc123def456",
            "MODEL_STORE_URL": "https://s.example.org/m",
            **variables,
        },
    )
    return out, calls.read_text().splitlines() if calls.exists() else []


def test_deploy_script_apply_waits_for_rollout(kubectl: str, tmp_path: Path) -> None:
    out, calls = run_deploy_apply(
        kubectl,
        tmp_path,
        fail_rollout=False,
        REGISTRY_SERVER="r.example.org",
        REGISTRY_USER="u",
        REGISTRY_PASSWORD="p",
        MODEL_STORE_READ_HEADER="Deploy-Token: t",
    )
    assert out.returncode == 0, out.stderr
    ns = "-n hatbot-production"
    assert any(c.startswith(f"{ns} create secret docker-registry hatbot-registry") for c in calls)
    assert any(c.startswith(f"{ns} create secret generic hatbot-model-store") for c in calls)
    applied = [i for i, c in enumerate(calls) if c.startswith("apply -f ") and c != "apply -f -"]
    waited = [i for i, c in enumerate(calls) if "rollout status deployment/hatbot" in c]
    assert applied and waited and applied[0] < waited[0]
    assert not any("rollout undo" in c for c in calls)


def test_deploy_script_failed_rollout_undone(kubectl: str, tmp_path: Path) -> None:
    out, calls = run_deploy_apply(kubectl, tmp_path, fail_rollout=True)
    assert out.returncode == 1
    assert "-n hatbot-production rollout undo deployment/hatbot" in calls
    assert not any("create secret" in c for c in calls), "no secrets without their variables"


def test_deploy_script_apply_needs_store_url(kubectl: str, tmp_path: Path) -> None:
    out, calls = run_deploy_apply(kubectl, tmp_path, fail_rollout=False, MODEL_STORE_URL="")
    assert out.returncode == 2 and "MODEL_STORE_URL" in out.stderr
    assert calls == []
