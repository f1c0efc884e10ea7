"""Found by discovery: a module named ``tasks``."""

from __future__ import annotations

from tests.samples.discovered import app


@app.actor
def invoice(number: int) -> str:
    return f"invoice {number}"
