"""What the dashboard's API answers instead of a result: an HTTP status and a message
that names the bad value and what was expected (sent as ``{"error": message}``).

The statuses used: 400 malformed input, 401 an action without the right token, 403 an
action on a read-only dashboard, 404 no such workflow or dead letter, 409 an action that
no longer applies (the workflow had ended), 415 an action whose body is not JSON (what
keeps plain cross-site forms out).
"""

from __future__ import annotations

from http import HTTPStatus


class WebError(Exception):
    """A request the API refuses, with its HTTP status."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
