"""The Django application of streamflow: add ``"streamflow.contrib.django"`` to
``INSTALLED_APPS`` for its ``streamflow_worker`` command."""

from __future__ import annotations

from django.apps import AppConfig


class StreamflowConfig(AppConfig):
    name = "streamflow.contrib.django"
    label = "streamflow"
    verbose_name = "streamflow"
