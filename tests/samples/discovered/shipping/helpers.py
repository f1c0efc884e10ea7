"""Not a tasks module: imported only when ``--discover`` asks for it."""

from __future__ import annotations

from tests.samples.discovered import app


@app.actor
def label(text: str) -> str:
    return text.upper()
