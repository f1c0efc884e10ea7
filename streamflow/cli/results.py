"""``streamflow result``: a workflow's result as JSON, or its failure with a non-zero exit;
``--wait`` waits for it, saying how it goes every few seconds."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

from streamflow.api.handles import WorkflowHandle
from streamflow.cli.common import connect
from streamflow.model.errors import ResultFailure, ResultMissing, ResultTimeout

PROGRESS_S = 5.0
"""How often a wait says where the workflow is."""

NOT_FINISHED = 2
"""The exit status of a workflow that has not finished (without ``--wait``, or past its
``--timeout``); a failed, cancelled, expired or unknown one exits 1."""


def cmd_result(args: argparse.Namespace) -> int:
    handle = connect(args).handle(args.workflow_id)
    try:
        value = _wait(handle, args.timeout) if args.wait else handle.get_result()
    except ResultFailure as failure:
        print(json.dumps({"status": failure.status, "error": failure.error}, default=repr))
        return 1
    except ResultMissing as missing:
        print(f"streamflow result: {missing}", file=sys.stderr)
        return NOT_FINISHED if missing.reason == "not finished" else 1
    except ResultTimeout as timeout:
        print(f"streamflow result: {timeout}", file=sys.stderr)
        return NOT_FINISHED
    print(json.dumps(value, default=repr))
    return 0


def _wait(handle: WorkflowHandle[Any], timeout: float | None) -> Any:
    """The result, waited for up to ``timeout`` seconds (None: for ever); every
    ``PROGRESS_S``, a line on stderr says how far the workflow is.

    Raises:
        ResultTimeout: not finished within ``timeout``.
    """
    started = time.monotonic()
    deadline = math.inf if timeout is None else started + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            return handle.get_result(block=True, timeout=max(0.0, min(PROGRESS_S, left)))
        except ResultTimeout:
            pass
        status = handle.status()
        done = status.counts["succeeded"] + status.counts["failed"]
        print(
            f"waiting for {handle.id}: {status.status}, {done} of {sum(status.counts.values())}"
            f" tasks done, {status.counts['running']} running"
            f" ({time.monotonic() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        if time.monotonic() >= deadline:
            raise ResultTimeout(handle.id, timeout or 0.0)
