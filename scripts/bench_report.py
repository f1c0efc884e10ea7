"""What ``scripts/bench.py`` makes of its rows: streamflow's advantage over each peer
(``ratio``), the issue's targets with PASS, FAIL or n/a (``checks``), and the table, as
text for the terminal (``render_text``) and as Markdown for bench/results/
(``render_markdown``). Functions of the rows and the run's metadata only: nothing here
touches Redis or runs a system.
"""

from __future__ import annotations

import statistics
from typing import Any

HIGHER_IS_BETTER = {"tasks/s", "workflows/s"}


def ratio(row: dict[str, Any], reference: dict[str, Any] | None) -> float | None:
    """streamflow's advantage over a peer: > 1 means streamflow is better."""
    if reference is None or "value" not in row or "value" not in reference:
        return None
    if row["system"] == "streamflow" or not row["value"] or not reference["value"]:
        return None
    if row["unit"] in HIGHER_IS_BETTER:
        return float(reference["value"] / row["value"])
    return float(row["value"] / reference["value"])


def find(rows: list[dict[str, Any]], system: str, name: str, n: int | None = None) -> Any:
    for row in rows:
        same = row["system"] == system and row["workload"] == name
        if same and "value" in row and (n is None or row["n"] == n):
            return row
    return None


def checks(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The issue's targets: (target, PASS/FAIL/n/a, measured)."""
    out: list[tuple[str, str, str]] = []

    def add(target: str, ok: bool | None, measured: str) -> None:
        out.append((target, "n/a" if ok is None else "PASS" if ok else "FAIL", measured))

    sf, dq = find(rows, "streamflow", "W1"), find(rows, "dramatiq", "W1")
    add(
        "W1 >= 1.5x plain dramatiq tasks/s",
        None if not (sf and dq) else sf["value"] >= 1.5 * dq["value"],
        f"{sf['value'] / dq['value']:.2f}x" if sf and dq else "missing",
    )
    sf, dw = find(rows, "streamflow", "W2"), find(rows, "dramatiq-workflow", "W2")
    add(
        "W2 >= 3x faster than dramatiq-workflow",
        None if not (sf and dw) else dw["value"] >= 3 * sf["value"],
        f"{dw['value'] / sf['value']:.2f}x" if sf and dw else "missing",
    )
    sf, dw = find(rows, "streamflow", "W4"), find(rows, "dramatiq-workflow", "W4")
    add(
        "W4 >= 3x dramatiq-workflow's workflows/s",
        None if not (sf and dw) else sf["value"] >= 3 * dw["value"],
        f"{sf['value'] / dw['value']:.2f}x" if sf and dw else "missing",
    )
    sf = find(rows, "streamflow", "W3")
    add(
        "W3 <= 2 ms/step",
        None if not sf else sf["value"] <= 2,
        f"{sf['value']:.3f} ms/step" if sf else "missing",
    )
    w2, w5 = find(rows, "streamflow", "W2"), find(rows, "streamflow", "W5")
    add(
        "W5 <= 2.5x W2's time",
        None if not (w2 and w5) else w5["value"] <= 2.5 * w2["value"],
        f"{w5['value'] / w2['value']:.2f}x" if w2 and w5 else "missing",
    )
    w6 = [r for r in rows if r["system"] == "streamflow" and r["workload"] == "W6"]
    flat = [r for r in w6 if r["n"] >= 100 and "value" in r]
    if flat:
        mid = statistics.median(r["value"] for r in flat)
        spread = max(abs(r["value"] / mid - 1) for r in flat)
        ns = ", ".join(f"{r['n']:,}" for r in flat)
        complete = any(r["n"] == 100_000 for r in flat)
        add(
            "W6 time/task flat within +-25% from n=100 to n=100,000",
            spread <= 0.25 if complete else None if spread <= 0.25 else False,
            f"max deviation {spread:.0%} from the median over n = {ns}"
            + ("" if complete else " (n = 100,000 missing)"),
        )
    else:
        add("W6 time/task flat within +-25% from n=100 to n=100,000", None, "missing")
    measured = [r for r in w6 if "value" in r]
    largest = max((r["largest_message_bytes"] for r in measured), default=None)
    add(
        "W6 no message over 200 B at any n",
        None if largest is None else largest <= 200,
        f"largest {largest:.0f} B" if largest is not None else "missing",
    )
    # Fixed costs (scripts, connections) swamp the per-task figure of small runs.
    mem = [r for r in rows if r["system"] == "streamflow" and "value" in r and r["tasks"] >= 1000]
    worst = max(mem, key=lambda r: r["memory_per_task_bytes"], default=None)
    add(
        "Redis memory (keys kept) <= 400 B per finished task (streamflow, >= 1,000 tasks)",
        None if worst is None else worst["memory_per_task_bytes"] <= 400,
        (
            f"worst {worst['memory_per_task_bytes']:.0f} B/task "
            f"({worst['workload']} n={worst['n']:,})"
        )
        if worst
        else "missing",
    )
    return out


RATIO_NOTE = (
    "sf adv. = streamflow's advantage, > 1 means streamflow is better: "
    "peer time / streamflow time for s, ms/step and ms/task; "
    "streamflow rate / peer rate for tasks/s and workflows/s"
)


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for row in rows:
        head = [row["workload"], f"{row['n']:,}", row["system"]]
        if "value" not in row:
            out.append([*head, row["reason"]])
            continue
        reference = find(rows, "streamflow", row["workload"], row["n"])
        r = ratio(row, reference)
        out.append(
            [
                *head,
                f"{row['value']:.3f}",
                row["unit"],
                "" if r is None else f"{r:.2f}",
                f"{row['largest_message_bytes']:,.0f}",
                f"{row['median_message_bytes']:,.0f}",
                f"{row['used_memory_growth_bytes'] / 1024:,.0f}",
                f"{row['memory_per_task_bytes']:,.0f}",
                f"{row['net_input_bytes'] / 1024:,.0f}",
            ]
        )
    return out


COLUMNS = [
    "workload", "n", "system", "median", "unit", "sf adv.", "max msg B", "median msg B",
    "mem growth KiB", "keys B/task", "net in KiB",
]  # fmt: skip


def render_text(rows: list[dict[str, Any]], verdicts: list[tuple[str, str, str]]) -> str:
    body = table_rows(rows)
    widths = [len(c) for c in COLUMNS]
    for cells in body:
        if len(cells) == len(COLUMNS):
            widths = [max(w, len(c)) for w, c in zip(widths, cells, strict=True)]
    lines = [RATIO_NOTE, "  ".join(c.rjust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines.append("-" * len(lines[-1]))
    for cells in body:
        if len(cells) == len(COLUMNS):
            lines.append("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)))
        else:
            lead = "  ".join(c.rjust(w) for c, w in zip(cells[:3], widths, strict=False))
            lines.append(f"{lead}  {cells[3]}")
    lines += ["", "targets:"]
    lines += [f"  [{status:>4}] {target}: {measured}" for target, status, measured in verdicts]
    return "\n".join(lines)


def render_markdown(
    rows: list[dict[str, Any]], verdicts: list[tuple[str, str, str]], meta: dict[str, Any]
) -> str:
    md = [f"# Benchmark {meta['when']}", ""]
    md += [f"- {key}: {value}" for key, value in meta.items()]
    md += ["", RATIO_NOTE + ".", "", "| " + " | ".join(COLUMNS) + " |"]
    md.append("|" + "---|" * 3 + "---:|---|" + "---:|" * (len(COLUMNS) - 5))
    for cells in table_rows(rows):
        if len(cells) < len(COLUMNS):
            cells = [*cells, *([""] * (len(COLUMNS) - len(cells)))]
        md.append("| " + " | ".join(cells) + " |")
    md += ["", "## Targets", "", "| target | result | measured |", "|---|---|---|"]
    md += [f"| {target} | {status} | {measured} |" for target, status, measured in verdicts]
    return "\n".join(md) + "\n"
