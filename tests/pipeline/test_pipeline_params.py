"""Parameters: one versioned file equal to the code's defaults, overridable from the CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PARAMS_FILE = REPO / "params.yaml"


def _leaves(data: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for key, value in data.items():
        if isinstance(value, dict) and value and prefix == "":
            keys |= _leaves(value, f"{key}.")
        else:
            keys.add(prefix + key)
    return keys


def test_params_file_equals_the_code_defaults() -> None:
    from hatbot.pipeline.params import Params

    assert Params.load(PARAMS_FILE) == Params()


def test_params_file_lists_every_parameter() -> None:
    from hatbot.pipeline.params import Params

    written = yaml.safe_load(PARAMS_FILE.read_text())
    assert _leaves(written) == _leaves(Params().model_dump(mode="json"))


def test_params_file_comments_every_parameter() -> None:
    lines = PARAMS_FILE.read_text().splitlines()
    uncommented = []
    for i, line in enumerate(lines):
        match = re.match(r"^  (\w+):", line)
        if not match:
            continue
        # A comment right above, or above the key it shares a comment with (minn/maxn).
        above = lines[i - 1].strip()
        shared = re.match(r"^  \w+:", lines[i - 1]) and lines[i - 2].strip().startswith("#")
        if not (above.startswith("#") or shared):
            uncommented.append(match.group(1))
    assert uncommented == []


def test_load_applies_overrides_over_the_file(tmp_path: Path) -> None:
    from hatbot.pipeline.params import Params

    path = tmp_path / "params.yaml"
    path.write_text("train:\n  dim: 42\n  model: cbow\n")
    params = Params.load(
        path,
        [
            "train.dim=8",
            "evaluate.criteria=[soft]",
            "evaluate.panel_args.bucket=1000",
            "data.source=http://127.0.0.1:1/x.tar.gz",
        ],
    )
    assert params.train.dim == 8 and params.train.model == "cbow"
    assert params.evaluate.criteria == ("soft",)
    assert params.evaluate.panel_args == {"bucket": 1000}
    assert params.data.source == "http://127.0.0.1:1/x.tar.gz"
    assert params.train.epoch == Params().train.epoch


def test_load_keeps_text_parameters_as_text() -> None:
    from hatbot.pipeline.params import Params

    digits = "0123456789" * 6 + "0123"
    params = Params.load(None, [f"data.sha256={digits}", "data.source=2024"])
    assert params.data.sha256 == digits and params.data.source == "2024"
    assert Params.load(None, [f"data.sha256={digits}", "data.sha256=null"]).data.sha256 is None


@pytest.mark.parametrize(
    "override",
    [
        "train.dim",  # no value
        "dim=5",  # no section
        "train.=5",
        "nosuch.key=1",
        "train.nosuch=1",
        "train.dim=1",  # below its minimum
        "train.model=glove",
        "train.lr=[1",  # not YAML
        "train.dim.deeper=1",
        "data.sha256=abc",  # not a sha256
        "train.twins={notebook_sg6: 2}",  # no such recipe
        "train.twins={starter_kit: 9}",  # above MAX_TWINS
        "train.twins={starter_kit: -1}",
        "train.shuffled_proxies=[notebook_sg6]",  # no such recipe
        "train.shuffled_proxies=[notebook_sg10, notebook_sg10]",
    ],
)
def test_load_rejects_bad_overrides(override: str) -> None:
    from hatbot.pipeline.params import Params

    with pytest.raises(ValueError):
        Params.load(None, [override])


def test_soft_hint_rules_are_evaluated_in_soft_mode_only() -> None:
    """Soft hint rules give hints the hard host deletes: a run that would evaluate them in
    hard mode (and so never promote them) stops at its parameters, saying why."""
    from hatbot.pipeline.params import Params

    with pytest.raises(ValueError, match=r"evaluate\.criteria=\[soft\]"):
        Params.load(None, ["strategy.hint_rules=soft"])
    with pytest.raises(ValueError, match="hint_rules"):
        Params.load(None, ["strategy.hint_rules=loose", "evaluate.criteria=[soft]"])
    params = Params.load(None, ["strategy.hint_rules=soft", "evaluate.criteria=[soft]"])
    assert params.strategy.hint_rules == "soft"


@pytest.mark.parametrize("text", ["- a\n- b\n", "train: [\n"])
def test_load_rejects_a_file_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    from hatbot.pipeline.params import Params

    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"params\.yaml"):
        Params.load(path)


def test_cli_reads_params_yaml_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hatbot.cli import _params

    (tmp_path / "params.yaml").write_text("train:\n  dim: 33\n")
    monkeypatch.chdir(tmp_path)
    assert _params(None, None).train.dim == 33
    assert _params(None, ["train.dim=7"]).train.dim == 7
    assert _params(None, None, "/some/corpus").data.source == "/some/corpus"


def test_cli_reports_bad_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from hatbot.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "--set", "train.dim=0"])
    assert result.exit_code == 1
    assert "bad parameters" in result.output
    assert not (tmp_path / "models").exists()
