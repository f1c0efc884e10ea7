"""Actor options as a dramatiq user writes them: ``throws`` takes a class or a tuple of
them, and a queue name follows dramatiq's rule; anything else is refused naming it."""

from __future__ import annotations

from typing import Any

import pytest

from streamflow import App
from streamflow.testing import actor as bare_actor


def _noop() -> None:
    pass


@pytest.mark.parametrize("throws", [KeyError, (KeyError,), [KeyError, ValueError]], ids=repr)
def test_throws_takes_a_class_or_a_tuple(app: App, throws: Any) -> None:
    registered = app.actor(throws=throws)(_noop)

    assert KeyError in registered.throws
    assert isinstance(registered.throws, tuple)
    assert bare_actor(throws=throws)(_noop).throws == registered.throws


@pytest.mark.parametrize("throws", ["KeyError", 42, (KeyError, "x"), int], ids=repr)
def test_throws_of_anything_else_is_refused_naming_it(app: App, throws: Any) -> None:
    with pytest.raises(TypeError, match="throws must be an exception class") as info:
        app.actor(throws=throws)(_noop)
    assert repr(throws) in str(info.value)


@pytest.mark.parametrize("queue", ["default", "_q", "io.slow-2", "Q_1"])
def test_queue_names_as_dramatiq_has_them(app: App, queue: str) -> None:
    assert app.actor(queue=queue)(_noop).options.queue == queue


@pytest.mark.parametrize("queue", ["", "$2@!@#", "2q", "a:b", "a{b}", "-q", "q q"])
def test_any_other_queue_name_is_refused_naming_it(app: App, queue: str) -> None:
    with pytest.raises(ValueError, match="a queue name is letters") as info:
        app.actor(queue=queue)(_noop)
    assert repr(queue) in str(info.value)
    with pytest.raises(ValueError, match="a queue name is letters"):
        bare_actor(queue=queue)(_noop)
