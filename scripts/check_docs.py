"""The docs site builds with ``mkdocs build --strict`` (a broken link, a missing anchor,
a page left out of the nav, a docstring mkdocstrings cannot read: each fails it) into a
temporary folder, and what it built holds: every public name of ``streamflow`` has its
entry in the API reference, the benchmark tables and the dashboard screenshots are
there, and no page asks a font server for anything.

Run by ``scripts/test`` after the tests; the examples on the pages run in
``tests/test_docs.py``.
"""

from __future__ import annotations

import html
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import streamflow

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = sorted(path.name for path in (ROOT / "docs").glob("dashboard-*.png"))
# Names with no docstring of their own, documented in prose instead.
UNDOCUMENTED = {"__version__"}


class DocsError(Exception):
    """The site did not build, or it lacks something it must show."""


def build(site: Path) -> None:
    """``mkdocs build --strict`` into ``site``; a `DocsError` with its output if it fails."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise DocsError(f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}")


def first_row(table: Path) -> list[str]:
    """The cells of the first data row of the first table in a Markdown file."""
    lines = table.read_text().splitlines()
    for above, line in itertools.pairwise(lines):
        if re.fullmatch(r"\|[-:| ]+\|", above.strip()):
            return [cell.strip() for cell in line.strip().strip("|").split("|") if cell.strip()]
    return []


def check(site: Path) -> None:
    """What the built site must hold."""
    api = (site / "reference" / "api" / "index.html").read_text()
    missing = [
        name
        for name in streamflow.__all__
        if name not in UNDOCUMENTED and f'id="streamflow.{name}"' not in api
    ]
    if missing:
        raise DocsError(f"the API reference lacks {missing}")
    bench = (site / "benchmarks" / "index.html").read_text()
    for table in (
        "reference.md",
        "reference-plain.md",
        "reference-plain-processes.md",
        "reference-cluster.md",
    ):
        cells = first_row(ROOT / "bench" / "results" / table)
        if not cells or not all(html.escape(cell, quote=False) in bench for cell in cells):
            raise DocsError(f"the benchmarks page lacks bench/results/{table}'s {cells}")
    absent = [name for name in SCREENSHOTS if not (site / name).is_file()]
    if not SCREENSHOTS or absent:
        raise DocsError(f"the site lacks the dashboard screenshots {absent or SCREENSHOTS}")
    fonts = [
        page.relative_to(site).as_posix()
        for page in site.rglob("*.html")
        if "fonts.googleapis.com" in page.read_text()
    ]
    if fonts:
        raise DocsError(f"pages fetch remote fonts: {fonts[:5]}")


def main() -> int:
    """Build and check the site; 0 when both hold, else 1 with what failed on stderr."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="streamflow-site-") as tmp:
        site = Path(tmp) / "site"
        try:
            build(site)
            check(site)
        except DocsError as error:
            print(f"docs check failed: {error}", file=sys.stderr)
            return 1
        pages = sum(1 for _ in site.rglob("index.html"))
    print(f"docs ok: {pages} pages built strict and checked ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
