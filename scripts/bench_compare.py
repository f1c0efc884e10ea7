"""streamflow against an earlier commit of itself, side by side in one run.

``scripts/bench-compare REV [--rounds N] [--only W1 ...]`` checks REV out into a git
worktree (``.bench-worktrees/REV``, with its own venv), then runs ``scripts/bench.py
--systems streamflow --repeat 1`` in that tree and in this one by turns, N rounds (before,
after, before, after, ...: both sides see the same drift of a noisy machine). Each
workload's figure is the median of its N runs; the ratio is after against before
(above 1 is better: faster, or more tasks or workflows per second). Writes a table and
JSON under bench/results/ (``<stamp>-compare.md``/``.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HIGHER_IS_BETTER = {"tasks/s", "workflows/s"}


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def checkout(rev: str) -> Path:
    """A worktree of ``rev`` with its venv made (reused when it exists)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    tree = ROOT / ".bench-worktrees" / commit
    if not tree.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True
        )
    subprocess.run(["bash", "-c", "source scripts/_venv.sh"], cwd=tree, check=True)
    return tree


def bench_once(tree: Path, only: list[str]) -> list[dict[str, Any]]:
    """One run of the tree's own bench (streamflow only); its rows."""
    before = set((tree / "bench" / "results").glob("*.json"))
    command = [str(tree / ".venv" / "bin" / "python"), "scripts/bench.py"]
    command += ["--systems", "streamflow", "--repeat", "1"]
    if only:
        command += ["--only", *only]
    subprocess.run(command, cwd=tree, check=True, stdout=subprocess.DEVNULL)
    (written,) = set((tree / "bench" / "results").glob("*.json")) - before
    rows: list[dict[str, Any]] = json.loads(written.read_text())["rows"]
    return [row for row in rows if "value" in row]


def median_by_workload(runs: list[list[dict[str, Any]]]) -> dict[tuple[str, int], Any]:
    values: dict[tuple[str, int], list[float]] = {}
    units: dict[tuple[str, int], str] = {}
    for rows in runs:
        for row in rows:
            key = (row["workload"], row["n"])
            values.setdefault(key, []).append(row["value"])
            units[key] = row["unit"]
    return {key: (statistics.median(v), units[key], v) for key, v in values.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rev", help="the earlier commit (anything git rev-parse takes)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="+", default=[])
    args = parser.parse_args()
    before_tree = checkout(args.rev)
    runs: dict[str, list[list[dict[str, Any]]]] = {"before": [], "after": []}
    for i in range(args.rounds):
        for side, tree in (("before", before_tree), ("after", ROOT)):
            progress(f"round {i + 1}/{args.rounds}: {side} ({tree.name})")
            runs[side].append(bench_once(tree, args.only))
    before, after = median_by_workload(runs["before"]), median_by_workload(runs["after"])
    lines = [
        f"streamflow at {before_tree.name} (before) and at this tree (after), "
        f"{args.rounds} rounds by turns, median of each",
        "",
        "| workload | n | unit | before | after | after vs before |",
        "|---|---|---|---|---|---|",
    ]
    table: list[dict[str, Any]] = []
    for key in sorted(set(before) & set(after)):
        (b, unit, b_runs), (a, _, a_runs) = before[key], after[key]
        ratio = a / b if unit in HIGHER_IS_BETTER else b / a
        lines.append(f"| {key[0]} | {key[1]:,} | {unit} | {b:.4g} | {a:.4g} | {ratio:.3f}x |")
        table.append(
            {
                "workload": key[0],
                "n": key[1],
                "unit": unit,
                "before": b,
                "after": a,
                "before_runs": b_runs,
                "after_runs": a_runs,
                "after_vs_before": ratio,
            }
        )
    text = "\n".join(lines)
    print(text)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stamp}-compare.md").write_text(text + "\n")
    (RESULTS / f"{stamp}-compare.json").write_text(
        json.dumps({"before": before_tree.name, "rounds": args.rounds, "rows": table}, indent=2)
    )
    progress(f"wrote {RESULTS / stamp}-compare.md and .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
