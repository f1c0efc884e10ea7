"""The one-line switch: modules written against dramatiq's and dramatiq-workflow's APIs
(tests/samples, whose imports alone name streamflow) run on streamflow, with dramatiq's
units and defaults."""

from __future__ import annotations

import ast
import importlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis

import streamflow
import streamflow.compat.brokers as brokers
import streamflow.compat.dramatiq as dramatiq
from streamflow.compat.dramatiq_workflow import Chain, Group, WithDelay, Workflow
from streamflow.model.events import TaskFailed, TaskStarted
from tests.helpers import events_of
from tests.waiting import wait_until

SAMPLES = Path(__file__).parent / "samples"


def load(name: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The sample module ``name``, imported afresh, with a worker of its broker running."""
    monkeypatch.setenv("SAMPLE_REDIS_URL", redis_url)
    monkeypatch.setattr(brokers, "_broker", None)
    sys.modules.pop(f"tests.samples.{name}", None)
    module = importlib.import_module(f"tests.samples.{name}")
    worker = dramatiq.Worker(module.broker, worker_threads=4)
    worker.start()
    try:
        yield module
    finally:
        worker.stop()
        module.broker.close()
        sys.modules.pop(f"tests.samples.{name}", None)


@pytest.fixture
def tasks(r: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from load("dramatiq_tasks", redis_url, monkeypatch)


@pytest.fixture
def flows(r: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from load("dramatiq_workflow_tasks", redis_url, monkeypatch)


@pytest.mark.parametrize("name", ["dramatiq_tasks", "dramatiq_workflow_tasks"])
def test_the_samples_name_streamflow_in_their_imports_only(name: str) -> None:
    source = (SAMPLES / f"{name}.py").read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    skipped: set[int] = set()
    for node in tree.body:
        is_docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if isinstance(node, ast.Import | ast.ImportFrom) or is_docstring:
            assert node.end_lineno is not None
            skipped.update(range(node.lineno, node.end_lineno + 1))
    rest = [line for number, line in enumerate(lines, 1) if number not in skipped]
    assert rest and not [line for line in rest if "streamflow" in line]


def test_send_and_get_result_in_milliseconds(tasks: Any) -> None:
    sent = tasks.count_words.send("one two three")
    assert sent.get_result(block=True, timeout=10_000) == 3
    assert sent.message_id == sent.handle.id
    slow = tasks.too_slow.send()
    with pytest.raises(dramatiq.ResultMissing):
        slow.get_result()
    with pytest.raises(dramatiq.ResultTimeout):
        slow.get_result(block=True, timeout=50)  # 50 ms, not 50 s


def test_pipelines_and_groups(tasks: Any) -> None:
    assert tasks.running_total() == [3, 6, 10]
    assert tasks.word_counts(["a", "a b", "a b c"]) == [1, 2, 3]
    started = time.monotonic()
    pipe = (tasks.add.message(1) | tasks.add.message(1)).run(delay=300)
    assert pipe.get_result(block=True) == 2
    assert time.monotonic() - started >= 0.3  # 300 ms, dramatiq's unit
    g = dramatiq.group([tasks.add.message(1, 1)]).run(delay=10)
    g.wait(timeout=10_000)
    assert g.completed


def test_dramatiqs_defaults_and_units(tasks: Any) -> None:
    options = tasks.lookup.native.options
    assert options.max_retries == 20
    assert (options.min_backoff_ms, options.max_backoff_ms) == (15_000, 7 * 24 * 3600 * 1000)
    assert options.time_limit_ms == 600_000
    flaky = tasks.flaky.native.options
    assert (flaky.max_retries, flaky.min_backoff_ms, flaky.max_backoff_ms) == (3, 10, 50)
    assert tasks.perishable.native.options.max_age_ms == 200
    assert tasks.perishable.native.options.priority == 5
    message = tasks.add.message_with_options(args=(1,), max_age=50, time_limit=70)
    assert (message.options.max_age_ms, message.options.time_limit_ms) == (50, 70)


def test_retries_back_off_in_milliseconds(tasks: Any) -> None:
    sent = tasks.flaky.send("twice", 2)
    assert sent.get_result(block=True, timeout=10_000) == 3


def test_retry_with_a_delay_in_milliseconds(tasks: Any) -> None:
    sent = tasks.not_yet.send("later")
    assert sent.get_result(block=True) == "ready"
    (failed,) = events_of(sent.handle.history(), TaskFailed)
    assert failed.retry_delay_ms == 300


def test_time_limit_in_milliseconds(tasks: Any) -> None:
    with pytest.raises(dramatiq.ResultFailure) as failure:
        tasks.too_slow.send().get_result(block=True)
    assert failure.value.error["type"] == "TimeLimitExceeded"


def test_throws_fails_at_once_despite_the_default_retries(tasks: Any) -> None:
    sent = tasks.lookup.send("missing")
    with pytest.raises(dramatiq.ResultFailure):
        sent.get_result(block=True)
    assert len(events_of(sent.handle.history(), TaskStarted)) == 1


def test_callbacks_by_actor_name(tasks: Any) -> None:
    tasks.add.send_with_options(args=(1, 1), on_success="report")
    wait_until(lambda: tasks.reports == [("add", 2)], 10)


def test_on_retry_exhausted_by_actor_name(tasks: Any) -> None:
    with pytest.raises(dramatiq.ResultFailure):
        tasks.hopeless.send().get_result(block=True)
    wait_until(lambda: tasks.reports == [("hopeless", 1)], 10)


def test_rate_limiter_on_the_brokers_redis(tasks: Any) -> None:
    assert tasks.exclusive.send().get_result(block=True) is True


def test_errors_are_streamflows() -> None:
    assert dramatiq.ResultFailure is streamflow.ResultFailure
    assert issubclass(dramatiq.Retry, streamflow.Retry)
    assert dramatiq.DramatiqError is streamflow.StreamflowError


def test_options_it_does_not_know_are_refused(tasks: Any) -> None:
    with pytest.raises(ValueError, match="unknown option colour"):
        dramatiq.actor(colour="red")(lambda: None)
    with pytest.raises(ValueError, match="unknown option colour"):
        tasks.add.message_with_options(args=(1,), colour="red")
    with pytest.raises(TypeError, match="not a middleware streamflow knows"):
        tasks.broker.add_middleware(object())
    with pytest.raises(dramatiq.ActorNotFound, match="nope"):
        tasks.broker.get_actor("nope")
    with pytest.raises(ValueError, match="milliseconds"):
        tasks.add.message_with_options(args=(1,), delay=-1)


def test_a_workflow_runs_as_dramatiq_workflow_runs_it(flows: Any) -> None:
    handle = flows.nightly()
    handle.result(timeout=30)
    names = [name for name, _ in flows.done]
    assert names[0] == "extract" and names[-1] == "load"
    assert sorted(names[1:3]) == ["clean", "index"]  # no result was passed: one argument each
    when = dict(flows.done)
    assert when["load"] - max(when["clean"], when["index"]) >= 0.3  # WithDelay in ms


def test_workflow_parts_are_checked(flows: Any) -> None:
    with pytest.raises(TypeError, match="Chain, Group, WithDelay"):
        Workflow(Chain(flows.step.message("a"), "b"))
    empty: Callable[[], Any] = Workflow(Group()).run
    assert empty().result(timeout=10) == []
    assert Workflow(WithDelay(Chain(), 10)).run().result(timeout=10) is None
