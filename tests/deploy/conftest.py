"""Fixtures for the deployment tests: kubectl, the rendered overlays, the CI file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# The helpers' folder is importable whatever pytest's import mode (importlib adds nothing).
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from deploy_helpers import K8S, OVERLAYS, REPO, kustomize, which_kubectl


@pytest.fixture(scope="session")
def kubectl() -> str:
    return which_kubectl()


@pytest.fixture(scope="session")
def rendered(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    """Every overlay, rendered once per session."""
    return {name: kustomize(kubectl, K8S / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="session")
def gitlab_ci() -> dict[str, Any]:
    data = yaml.safe_load((REPO / ".gitlab-ci.yml").read_text())
    assert isinstance(data, dict)
    return data
