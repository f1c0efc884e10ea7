"""Actors keep their functions' types: mypy, run on a sample, reports exactly the errors
its comments expect (wrong arguments to ``message`` and ``send``, a result used as
another type) and infers the results its comments say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent / "samples" / "typed_usage.py"
ROOT = SAMPLE.parents[2]


def expected(marker: str) -> dict[int, str]:
    """Line -> what its ``# <marker>: ...`` comment says."""
    found = {}
    for number, line in enumerate(SAMPLE.read_text().splitlines(), start=1):
        match = re.search(rf"\S  # {marker}: (.+)$", line)
        if match:
            found[number] = match[1].strip()
    return found


def test_mypy_reports_what_the_sample_expects() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(SAMPLE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors: dict[int, str] = {}
    revealed: dict[int, str] = {}
    for line in done.stdout.splitlines():
        error = re.match(r".*?:(\d+): error: .*\[([\w-]+)\]$", line)
        note = re.match(r'.*?:(\d+): note: Revealed type is "(.+)"$', line)
        if error:
            errors[int(error[1])] = error[2]
        elif note:
            revealed[int(note[1])] = note[2]
    assert errors == expected("E"), done.stdout
    assert revealed == expected("R"), done.stdout
    assert len(errors) == 5 and len(revealed) >= 7
