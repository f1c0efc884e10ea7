"""``streamflow worker --processes N``: a supervisor of N worker processes.

Each worker is a process of its own, spawned (never forked: a forked Redis connection or
thread is shared by accident) running this same command with ``--processes 1``. The
supervisor itself never connects to Redis nor imports the application: it starts the
workers, restarts one that exits unexpectedly (after 1 s, then 2, 4 ... up to 30 s; back
to 1 s once a worker ran a minute), forwards a graceful stop, and restarts them all when
the code changes (``--watch``).

Signals: SIGTERM, or a first SIGINT, stops gracefully (each worker gets SIGTERM, finishes
its in-flight tasks within its ``--grace`` and exits; then the supervisor exits 0). A
second SIGINT kills the workers (SIGKILL) and the supervisor exits 130.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import FrameType
from typing import Any

from streamflow.logs import get_logger

log = get_logger(__name__)

#: A worker process exits with this code when it could not start at all (its app could
#: not be loaded, or its options were refused): restarting it would fail the same way.
EXIT_NOT_STARTED = 3
#: Restart delays, in seconds: the first, the longest, and how long a worker must have run
#: for its next restart to wait the first delay again.
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
HEALTHY_AFTER_S = 60.0
#: How long past its grace a stopping worker may take before it is killed.
STRAGGLER_S = 15.0


@dataclasses.dataclass(slots=True, kw_only=True)
class Slot:
    """One worker process the supervisor keeps running."""

    index: int
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff_s: float = FIRST_BACKOFF_S
    restart_at: float | None = None
    """When a worker that exited is started again (None: it runs, or it is not due)."""
    reloading: bool = False
    """It was asked to stop for a reload: start it again as soon as it exited."""

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def exit_reason(code: int) -> dict[str, Any]:
    """A process's return code as log fields: its exit code, or the signal that ended it."""
    if code < 0:
        try:
            return {"signal": signal.Signals(-code).name}
        except ValueError:
            return {"signal": -code}
    return {"exit_code": code}


class Supervisor:
    """Runs one command per slot, each in a process of its own, until stopped.

    Args:
        commands: the command line of each worker process.
        env: their environment (default: this process's).
        grace_s: the workers' ``--grace``: how long a graceful stop may take, plus
            ``STRAGGLER_S``, before a worker still running is killed.
        name: what the workers run (``module:app``), for the logs.
        backoff_s: the first and the longest wait before a worker that exited is
            started again (each restart waits twice the one before).
        healthy_after_s: a worker that ran this long is restarted after the first wait.
        changes: for ``--watch``: given a stop event, yields each time the code changed
            (and ends once the event is set); each change restarts every worker
            gracefully.
    """

    def __init__(
        self,
        commands: Sequence[list[str]],
        *,
        env: Mapping[str, str] | None = None,
        grace_s: float = 30.0,
        changes: Callable[[threading.Event], Iterable[object]] | None = None,
        name: str = "",
        backoff_s: tuple[float, float] = (FIRST_BACKOFF_S, MAX_BACKOFF_S),
        healthy_after_s: float = HEALTHY_AFTER_S,
    ) -> None:
        self._name = name
        self._first_backoff_s, self._max_backoff_s = backoff_s
        self._healthy_after_s = healthy_after_s
        self.slots = [
            Slot(index=i, command=list(c), backoff_s=backoff_s[0]) for i, c in enumerate(commands)
        ]
        self._env = dict(os.environ if env is None else env)
        self._grace_s = grace_s
        self._changes = changes
        self._stopping = threading.Event()
        self._hard = threading.Event()
        self._wake = threading.Event()
        self._reload = threading.Event()
        self._interrupted = False

    # -- signals ----------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self._interrupted:
            self._hard.set()
        self._interrupted = self._interrupted or signum == signal.SIGINT
        self._stopping.set()
        self._wake.set()

    # -- running ----------------------------------------------------------------------

    def run(self) -> int:
        """Run the workers until a signal stops them; returns the exit code: 0 after a
        graceful stop, 130 after a hard one, 1 when a worker could not start at all or
        had to be killed."""
        handled = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        watcher_stop = threading.Event()
        watcher = self._start_watcher(watcher_stop)
        log.info("supervisor_started", name=self._name, processes=len(self.slots), pid=os.getpid())
        try:
            for slot in self.slots:
                self._spawn(slot)
            while not self._stopping.is_set():
                if self._reload.is_set():
                    self._reload.clear()
                    self._begin_reload()
                failed = self._tend()
                if failed is not None:
                    self._stopping.set()
                    code = self._stop(code=1)
                    # Last, below the worker's own one-line error: why nothing runs.
                    log.error(
                        "worker_not_started",
                        name=self._name,
                        index=failed.index,
                        advice="its error is above; fix it and start again",
                    )
                    return code
                self._wake.wait(0.1)
                self._wake.clear()
            return self._stop(code=0)
        except BaseException:
            # A bug or a failed spawn here must not leave workers running unsupervised.
            self._kill([slot for slot in self.slots if slot.alive])
            raise
        finally:
            watcher_stop.set()
            if watcher is not None:
                watcher.join(5)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _spawn(self, slot: Slot) -> None:
        slot.process = subprocess.Popen(slot.command, env=self._env)
        slot.started_at = time.monotonic()
        slot.restart_at = None
        slot.reloading = False
        log.info("worker_process_started", index=slot.index, pid=slot.process.pid)

    def _tend(self) -> Slot | None:
        """Notice workers that exited and restart those that are due; returns a worker
        that could not start at all (the supervisor then stops), if any."""
        now = time.monotonic()
        for slot in self.slots:
            process = slot.process
            if process is not None and process.poll() is not None:
                code = process.returncode
                slot.process = None
                if code == EXIT_NOT_STARTED and self._changes is None:
                    return slot
                if code == EXIT_NOT_STARTED:  # --watch: the next change may fix it
                    log.error(
                        "worker_not_started",
                        name=self._name,
                        index=slot.index,
                        advice="its error is above; waiting for the code to change",
                    )
                    slot.restart_at = None
                    continue
                if slot.reloading:
                    slot.restart_at = now
                else:
                    ran_s = now - slot.started_at
                    healthy = ran_s >= self._healthy_after_s
                    delay = self._first_backoff_s if healthy else slot.backoff_s
                    slot.backoff_s = min(delay * 2, self._max_backoff_s)
                    slot.restart_at = now + delay
                    log.warning(
                        "worker_process_exited",
                        index=slot.index,
                        pid=process.pid,
                        ran_s=round(ran_s, 1),
                        restart_in_s=delay,
                        **exit_reason(code),
                    )
            if slot.process is None and slot.restart_at is not None and now >= slot.restart_at:
                self._spawn(slot)
        return None

    # -- reloading (--watch) ----------------------------------------------------------

    def _start_watcher(self, stop: threading.Event) -> threading.Thread | None:
        changes = self._changes
        if changes is None:
            return None

        def watch() -> None:
            for _ in changes(stop):
                self._reload.set()
                self._wake.set()

        thread = threading.Thread(target=watch, name="streamflow-watch", daemon=True)
        thread.start()
        return thread

    def _begin_reload(self) -> None:
        """Stop every worker gracefully; each starts again (new code) once it exited."""
        log.info("code_changed_restarting_workers", processes=len(self.slots))
        for slot in self.slots:
            slot.backoff_s = self._first_backoff_s
            if slot.alive:
                slot.reloading = True
                self._signal(slot, signal.SIGTERM)
            else:  # waiting out a backoff: start it now, with the new code
                slot.restart_at = time.monotonic()

    # -- stopping ---------------------------------------------------------------------

    def _signal(self, slot: Slot, sig: signal.Signals) -> None:
        if slot.process is not None:  # (Popen ignores a process that exited meanwhile)
            slot.process.send_signal(sig)

    def _stop(self, code: int) -> int:
        """Stop every worker: gracefully (SIGTERM, then wait), or at once on a second
        SIGINT (SIGKILL; returns 130)."""
        running = [slot for slot in self.slots if slot.alive]
        log.info("supervisor_stopping", processes=len(running))
        for slot in running:
            self._signal(slot, signal.SIGTERM)
        deadline = time.monotonic() + self._grace_s + STRAGGLER_S
        while any(slot.alive for slot in running):
            if self._hard.is_set():
                log.warning("supervisor_killing_workers", processes=len(running))
                self._kill(running)
                return 130
            if time.monotonic() >= deadline:
                stragglers = [s.process.pid for s in running if s.alive and s.process]
                log.error("worker_processes_killed_after_grace", pids=stragglers)
                self._kill(running)
                return 1
            self._wake.wait(0.1)
            self._wake.clear()
        log.info("supervisor_stopped")
        return 130 if self._hard.is_set() else code

    def _kill(self, slots: list[Slot]) -> None:
        for slot in slots:
            self._signal(slot, signal.SIGKILL)
        for slot in slots:
            if slot.process is not None:
                slot.process.wait()
