"""The docs site's Python examples run as written and print what their comments say.

Every ```python block of a page runs, in order, in one namespace per page (a fragment
that cannot run alone is fenced ```py). A block whose first line names a module
(``# tasks.py``) is written to that module instead, for the page's later blocks to
import. What a block promises to print is a line of its output: ``print(...)  # text``
promises ``text`` up to a ": " explanation (unless it elides something with "..." or
"<id>"), and ``# -> text`` on any line promises all of ``text``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import redis

from tests.helpers import close_apps

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", flags=re.DOTALL)
MODULE = re.compile(r"# (\w+)\.py\n")
PROMISE = re.compile(r"print\(.*\)\s+# (.+)$")
ARROW = re.compile(r"# -> (.+)$")
PAGES = sorted(path for path in DOCS.rglob("*.md") if BLOCK.search(path.read_text()))


def promised(block: str) -> list[str]:
    """The output lines a block's ``print(...)  # text`` comments promise."""
    lines = []
    for line in block.splitlines():
        arrow, match = ARROW.search(line), PROMISE.search(line)
        if arrow:
            lines.append(arrow.group(1).strip())
        elif match and "..." not in match.group(1) and "<" not in match.group(1):
            lines.append(match.group(1).split(": ")[0].strip())
    return lines


def test_the_pages_have_examples() -> None:
    names = {path.relative_to(DOCS).as_posix() for path in PAGES}
    assert {"index.md", "tutorial.md", "how-to/composition.md", "how-to/callbacks.md"} <= names
    for path in PAGES:
        assert any(promised(block) for block in BLOCK.findall(path.read_text())), path.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_examples_run(
    page: Path,
    r: redis.Redis,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STREAMFLOW_REDIS_URL", redis_url)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict[str, object] = {}
    seen: list[dict[str, object]] = []
    modules = []
    try:
        for index, block in enumerate(BLOCK.findall(page.read_text())):
            module = MODULE.match(block)
            if module:
                (tmp_path / f"{module.group(1)}.py").write_text(block)
                modules.append(module.group(1))
                continue
            exec(compile(block, f"{page.name} example {index}", "exec"), namespace)
            seen.append(dict(namespace))  # a later block may rebind its App's name
            printed = capsys.readouterr().out.splitlines()
            for line in promised(block):
                assert line in printed, f"{page.name} example {index}: {line!r} not in {printed}"
    finally:
        spaces = [*seen, *(vars(sys.modules[m]) for m in modules if m in sys.modules)]
        close_apps(*spaces)  # their subscriptions would outlive the test
        for name in modules:
            sys.modules.pop(name, None)
        if "sentry_sdk" in sys.modules:  # a page's sentry_sdk.init: no client outlives it
            sentry_sdk = sys.modules["sentry_sdk"]
            sentry_sdk.get_client().close()
            sentry_sdk.get_global_scope().set_client(None)
