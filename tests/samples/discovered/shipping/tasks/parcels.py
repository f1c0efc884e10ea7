"""Found by discovery: a module of a ``tasks`` package."""

from __future__ import annotations

from tests.samples.discovered import app


@app.actor
def parcel(weight_kg: float) -> str:
    return f"parcel of {weight_kg} kg"
