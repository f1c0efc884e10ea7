"""docs/operations.md says what the README's "Operating streamflow" says: the same alert
rules and scrape config, and YAML that parses."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
YAML = re.compile(r"```yaml\n(.*?)```", flags=re.DOTALL)


def blocks(path: Path) -> dict[str, str]:
    """A page's yaml blocks by their first line (a comment naming the file, when any)."""
    return {block.splitlines()[0].strip(): block for block in YAML.findall(path.read_text())}


def test_the_operations_page_has_the_readmes_rules_and_scrape_config() -> None:
    import yaml  # here: the floor leg's venv has no yaml, and deselects this test

    readme, page = blocks(ROOT / "README.md"), blocks(ROOT / "docs" / "operations.md")
    for name in ("# rules.yml", "# prometheus.yml"):
        assert page[name] == readme[name], name
    for block in page.values():
        yaml.safe_load(block)
