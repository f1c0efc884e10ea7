"""
Unit tests of ``streamflow.api.canvas``: composing chains, groups and delays, and what
is refused, naming it: a step that is no canvas, a bad delay, an argument that cannot be
encoded.
"""

from __future__ import annotations

import datetime

import pytest

from streamflow.api.canvas import Chain, Group, WithDelay
from streamflow.api.compile import compile_canvas
from streamflow.model.errors import EncodeError
from streamflow.testing import evaluate
from tests.canvas_helpers import a, add, b, c


class Foo:
    pass


# Composition


def test_pipe_operator_builds_a_chain() -> None:
    x, y = a.message(1), b.message()

    chain = x | y

    assert isinstance(chain, Chain)
    assert chain.steps == Chain(x, y).steps == (x, y)


def test_chains_flatten() -> None:
    x, y, z = a.message(), b.message(), c.message()

    assert (x | y | z).steps == (x, y, z)
    assert (x | (y | z)).steps == (x, y, z)
    assert Chain(Chain(x), Chain(y, z)).steps == (x, y, z)


def test_chain_does_not_flatten_groups_or_delays() -> None:
    x, y = a.message(), b.message()
    group, delayed = Group(x, y), WithDelay(Chain(x, y), 1)

    assert Chain(group, delayed).steps == (group, delayed)


def test_group_keeps_its_children_in_order() -> None:
    x, y = a.message(), b.message()

    assert Group(y, x).children == (y, x)
    assert Group().children == ()


def test_an_empty_chain_has_no_steps_and_vanishes_as_a_step() -> None:
    x, y = a.message(), b.message()

    assert Chain().steps == ()
    assert Chain(x, Chain(), y).steps == (x, y)
    assert evaluate(Chain()).value is None
    assert evaluate(Group(Chain())).value == [None]


@pytest.mark.parametrize(
    ("build", "what"),
    [
        (lambda bad: Chain(a.message(), bad), "Chain step"),
        (lambda bad: Group(a.message(), bad), "Group member"),
        (lambda bad: WithDelay(bad, 1), "WithDelay child"),
        (lambda bad: compile_canvas(bad), "a workflow"),
        (lambda bad: a.message() | bad, "Chain step"),
    ],
    ids=["chain", "group", "with-delay", "compile", "pipe"],
)
def test_non_canvas_is_rejected_naming_value_and_type(build: object, what: str) -> None:
    with pytest.raises(TypeError) as info:
        build(a)  # type: ignore[operator]  # the actor itself, not a message

    message = str(info.value)
    assert message.startswith(f"{what} must be a Message, Chain, Group or WithDelay")
    assert "Actor('a', queue='default')" in message
    assert "of type Actor" in message


def test_non_canvas_of_a_builtin_type() -> None:
    with pytest.raises(TypeError, match=r"\(got 42 of type int\)"):
        Group(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("delay", [-1, -0.001, "1", True, datetime.timedelta(seconds=-1)])
def test_with_delay_rejects_bad_delays(delay: object) -> None:
    with pytest.raises(ValueError, match="delay must be a non-negative number of seconds"):
        WithDelay(a.message(), delay)  # type: ignore[arg-type]


def test_with_delay_rejects_infinity() -> None:
    with pytest.raises(ValueError, match="delay must be a non-negative number"):
        WithDelay(a.message(), float("inf"))


def test_with_delay_rejects_nan() -> None:
    with pytest.raises(ValueError, match="delay must be a non-negative number"):
        WithDelay(a.message(), float("nan"))


# Unencodable arguments


def test_unencodable_positional_argument_is_named() -> None:
    with pytest.raises(EncodeError) as info:
        compile_canvas(Chain(a.message(), add.message(1, Foo())))

    assert str(info.value) == "args[1] of add: object of type Foo cannot be encoded"
    assert info.value.path == "args[1] of add"
    assert info.value.type_name == "Foo"


def test_unencodable_keyword_argument_is_named() -> None:
    with pytest.raises(EncodeError) as info:
        compile_canvas(add.message(1, scale=Foo()))

    assert str(info.value) == "kwargs['scale'] of add: object of type Foo cannot be encoded"


def test_unencodable_value_deep_in_an_argument_is_named() -> None:
    with pytest.raises(EncodeError) as info:
        compile_canvas(add.message([1, {"k": Foo()}]))

    assert info.value.path == "args[0][1]['k'] of add"
