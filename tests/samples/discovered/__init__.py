"""A package whose actors live in ``tasks`` modules of its subpackages, found by
``streamflow worker tests.samples.discovered`` (no ``:app``): billing/tasks.py, and the
``tasks`` package of shipping/. shipping/helpers.py is not a tasks module: only
``--discover '*.helpers'`` imports it."""

from __future__ import annotations

import os

from streamflow import App

app = App(os.environ["STREAMFLOW_REDIS_URL"])
