"""Integrations with what applications already use: Sentry (``contrib.sentry``),
Django (``contrib.django``), Flask (``contrib.flask``) and ASGI frameworks such as
FastAPI and Starlette (``contrib.asgi``). Each needs its own extra and is imported on
its own; nothing here is imported by ``streamflow`` itself."""
