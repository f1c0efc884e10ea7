"""The README's Python examples run as written, and every public name is documented."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import redis

import streamflow
from tests.cluster import ON_CLUSTER
from tests.helpers import close_apps

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
EXAMPLES = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_runs(
    index: int,
    r: redis.Redis,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STREAMFLOW_REDIS_URL", redis_url)
    namespace: dict[str, object] = {}
    try:
        exec(compile(EXAMPLES[index], f"README example {index}", "exec"), namespace)
    finally:
        close_apps(namespace)  # their subscriptions would outlive the test
    printed = capsys.readouterr().out
    # Each example states what it prints in "# ->" or a trailing comment; spot-check.
    if index == 0:
        assert printed.splitlines()[0].endswith(" 10")
        assert printed.splitlines()[2] == "[0, 2, 4]"
    if index == 2:
        assert printed.splitlines() == ["3 sum=7"]
    if index == 3:
        lines = printed.splitlines()
        assert lines[0] == "1 True broken"
        assert "fails ValueError" in lines
        assert "a" in lines
    if index == 4:
        assert printed.strip() == "13 [] []"
    if index == 5:
        assert printed.splitlines() == ["HistoryLimitExceeded", "['failed']"]
    if index == 6:
        assert printed.splitlines()[-1] == "completed 5 True"
    if index == 7:
        lines = printed.splitlines()
        assert lines[0] == "[0, 1, 4, 9, 16, 25]"
        assert "error in broken attempt 1 KeyError('missing')" in lines
    if index == 8:
        assert printed.splitlines() == ["[(ConnectionError('billing is down (7)'), 2)]"]
    if index == 9:
        assert printed.splitlines() == ["3", "6"]
    if index == 10:
        lines = printed.splitlines()
        assert lines[0] == "ran extract" and lines[3:] == ["ran load", "completed"]
        assert sorted(lines[1:3]) == ["ran a", "ran b"]
    if index == 11:
        assert printed.splitlines() == ["10", "[3, 6, 10]", "all done", "[2, 14]", "42"]
    if index == 12:
        assert printed.splitlines() == ["13 11", "[0, 2, 4]", "completed", "WorkflowCompleted"]
    if index == 13:
        assert printed.splitlines() == ["reports True", "True"]
    if index == 14:
        assert printed.splitlines() == ["True", "False", "v2, approved by ann"]
    if index == 15:
        lines = printed.splitlines()
        assert sorted(lines[:2]) == ["fetch 1", "fetch 2"]
        assert lines[2:] == ["failed: the billing API is down", "[3]", "3"]
    if index == 16:
        assert printed.splitlines() == ["extract runs", "40", "80"]
    if index == 17:
        assert printed.splitlines() == ["total 5"]
    if index == 18:
        assert printed.splitlines() == ["[0, 1, 4]"]
    if index == 19:
        assert printed.splitlines() == [
            "4",
            "['streamflow submit', 'streamflow task double', 'streamflow task double']",
            "1",
        ]
    if index == 20:
        assert printed.strip() == ("48" if ON_CLUSTER else "1")
    if index == 1:
        assert "ValueError no luck" in printed
        assert printed.splitlines()[1:] == [
            "args[0] of echo: object of type object cannot be encoded",
            "actor 'echo' takes (value): too many positional arguments",
            "True",
        ]


def test_every_export_is_documented() -> None:
    for name in streamflow.__all__:
        if name != "__version__":
            assert f"`{name}" in README or f"**`{name}" in README, name


def test_every_export_exists() -> None:
    for name in streamflow.__all__:
        assert getattr(streamflow, name) is not None, name


def test_every_extra_is_in_the_extras_table() -> None:
    pyproject = tomllib.loads(
        (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    )
    for extra in pyproject["project"]["optional-dependencies"]:
        assert f"| `{extra}` |" in README, extra


def test_every_yaml_block_parses_and_the_alerts_are_there() -> None:
    import yaml

    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", README, re.S)]
    assert len(blocks) >= 3  # the liveness probe, the scrape config, the alert rules
    (rules,) = [block for block in blocks if isinstance(block, dict) and "groups" in block]
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert set(alerts) == {
        "StreamflowQueueStalled",
        "StreamflowTaskStuck",
        "StreamflowDeadLettersRising",
        "StreamflowFailuresHigh",
        "StreamflowWorkersGone",
    }
    assert "by (queue)" in alerts["StreamflowQueueStalled"]["expr"]  # per queue
    assert "streamflow_dead_letters_total" in alerts["StreamflowDeadLettersRising"]["expr"]
    assert 'streamflow_workers{state="silent"}' in alerts["StreamflowWorkersGone"]["expr"]
