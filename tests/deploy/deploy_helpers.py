"""Helpers for the deployment tests (not in conftest.py: other test folders use that name)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("staging", "production")
# Schemas bundled with kubernetes-validate; 1.32 matches the kubectl on the machines.
KUBERNETES_VERSION = "1.32.0"
# The oldest Kubernetes the manifests support (the preStop `sleep` action is 1.30's).
OLDEST_KUBERNETES = "1.30.0"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(what: str, why: str) -> None:
    """A missing tool fails the run under CI=true and skips it elsewhere."""
    message = f"{what} is not available: {why}"
    if in_ci():
        pytest.fail(message + " (CI=true: install it, see docs/LIFECYCLE.md)")
    pytest.skip(message)


def which_kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        require("kubectl", "it renders the kustomize overlays (`kubectl kustomize`)")
    assert path is not None
    return path


def kustomize(kubectl: str, folder: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kubectl, "kustomize", str(folder)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, f"kubectl kustomize {folder} failed:\n{out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]
