"""
Unit tests of ``streamflow.api.canvas``, ``streamflow.api.compile`` and
``streamflow.model.definition``: composing and compiling.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from streamflow.api.actors import Actor
from streamflow.api.canvas import Chain, Group, WithDelay
from streamflow.api.compile import compile_canvas
from streamflow.model.definition import (
    NONE,
    BarrierNode,
    Definition,
    TaskNode,
    assemble,
    spec_leaves,
)
from streamflow.model.errors import DecodeError, EncodeError
from streamflow.model.options import ActorOptions
from streamflow.testing import evaluate


def _add(*args: int, **kwargs: Any) -> int:
    return sum(args)


add = Actor(_add, name="add", options=ActorOptions())
a = Actor(_add, name="a", options=ActorOptions())
b = Actor(_add, name="b", options=ActorOptions())
c = Actor(_add, name="c", options=ActorOptions())
d = Actor(_add, name="d", options=ActorOptions(queue="slow", max_retries=3, time_limit_ms=500))


def compile_(canvas: object) -> Definition:
    return compile_canvas(canvas).definition  # type: ignore[arg-type]


def tasks(definition: Definition) -> list[TaskNode]:
    return [n for n in definition.nodes if isinstance(n, TaskNode)]


def barriers(definition: Definition) -> list[BarrierNode]:
    return [n for n in definition.nodes if isinstance(n, BarrierNode)]


def piped(definition: Definition, node: int) -> object:
    """The spec piped into ``node`` (None: nothing piped)."""
    pipe = definition.task(node).pipe
    return None if pipe == NONE else definition.specs[pipe]


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


# Determinism and the content hash


def _canvas(x: int) -> Chain:
    return Chain(a.message(x), Group(b.message(x), WithDelay(c.message(), 1)), d.message())


def test_same_canvas_same_hash() -> None:
    first, second = compile_(_canvas(1)), compile_(_canvas(1))

    assert first == second
    assert first.hash == second.hash
    assert len(first.hash) == 32


def test_arguments_do_not_change_the_hash() -> None:
    one, two = compile_canvas(_canvas(1)), compile_canvas(_canvas(2))

    assert one.definition.hash == two.definition.hash
    assert one.args != two.args


@pytest.mark.parametrize(
    "other",
    [
        Chain(b.message(1), Group(b.message(1), WithDelay(c.message(), 1)), d.message()),
        Chain(a.message(1), Group(b.message(1), WithDelay(c.message(), 2)), d.message()),
        Chain(a.message(1), Group(b.message(1), c.message()), d.message()),
        Chain(a.message(1), Group(WithDelay(c.message(), 1), b.message(1)), d.message()),
        Chain(a.message(1), Group(b.message(1), WithDelay(c.message(), 1)), a.message()),
        Chain(
            a.message(1),
            Group(b.message(1), WithDelay(c.message(), 1)),
            d.message_with_options(pipe_ignore=True),
        ),
    ],
    ids=["first-actor", "delay", "no-delay", "order", "last-actor", "pipe-ignore"],
)
def test_shape_changes_change_the_hash(other: Chain) -> None:
    assert compile_(other).hash != compile_(_canvas(1)).hash


def test_pipe_ignore_on_a_root_is_a_no_op() -> None:
    ignoring = Chain(a.message_with_options(pipe_ignore=True), b.message())

    assert compile_(ignoring).hash == compile_(Chain(a.message(), b.message())).hash


def test_actor_options_change_the_hash() -> None:
    fast = Actor(_add, name="a", options=ActorOptions(queue="fast"))

    assert compile_(fast.message()).hash != compile_(a.message()).hash


def test_node_ids_follow_canvas_order() -> None:
    definition = compile_(Chain(a.message(), Group(b.message(), Chain(c.message(), d.message()))))

    assert [n.id for n in definition.nodes] == list(range(len(definition.nodes)))
    assert [(n.id, n.actor) for n in tasks(definition)] == [(0, "a"), (2, "b"), (3, "c"), (5, "d")]
    assert [n.id for n in barriers(definition)] == [1, 4]


def test_args_are_keyed_by_node_and_absent_without_arguments() -> None:
    compiled = compile_canvas(Chain(a.message(1, 2), b.message(), c.message(k="v")))

    assert sorted(compiled.args) == [0, 4]  # a, barrier, b, barrier, c


# Barriers, pipes and specs


def test_chain_group_chain_barriers() -> None:
    definition = compile_(Chain(a.message(), Group(b.message(), c.message()), d.message()))

    assert [(n.id, n.actor) for n in tasks(definition)] == [(0, "a"), (2, "b"), (3, "c"), (5, "d")]
    assert barriers(definition) == [
        BarrierNode(id=1, sources=(0,), targets=(2, 3)),
        BarrierNode(id=4, sources=(2, 3), targets=(5,)),
    ]
    assert [(t.pred, t.succ) for t in tasks(definition)] == [(NONE, 1), (1, 4), (1, 4), (4, NONE)]
    assert definition.roots == (0,)
    assert definition.sinks == (5,)
    assert piped(definition, 0) is None
    assert piped(definition, 2) == piped(definition, 3) == 0
    assert piped(definition, 5) == [2, 3]
    assert definition.pipe_leaves(5) == [2, 3]
    assert definition.root_spec == 5
    assert definition.task(5).options == d.options


def test_piped_specs_are_shared() -> None:
    definition = compile_(Chain(a.message(), Group(b.message(), c.message())))

    assert definition.task(2).pipe == definition.task(3).pipe
    assert definition.specs == (0,)


def test_thousand_by_thousand_costs_two_thousand_edges() -> None:
    canvas = Chain(Group(*[a.message()] * 1000), Group(*[b.message()] * 1000))

    definition = compile_(canvas)

    assert definition.task_count == 2000
    assert definition.edge_count == 2000
    [barrier] = barriers(definition)
    assert barrier.sources == tuple(range(1000))
    assert barrier.targets == tuple(range(1001, 2001))
    assert definition.root_spec == list(range(1001, 2001))


def test_empty_group_between_steps() -> None:
    definition = compile_(Chain(a.message(), Group(), b.message()))

    assert barriers(definition) == [BarrierNode(id=1, sources=(0,), targets=(2,))]
    assert definition.task(2).pred == 1
    assert piped(definition, 2) == []
    assert all(barrier.sources for barrier in barriers(definition))
    assert definition.root_spec == 2


def test_empty_group_first() -> None:
    definition = compile_(Chain(Group(), a.message()))

    assert barriers(definition) == []
    assert definition.roots == (0,)
    assert piped(definition, 0) == []
    assert definition.root_spec == 0


def test_empty_group_last() -> None:
    definition = compile_(Chain(a.message(), Group()))

    assert barriers(definition) == []
    assert definition.task(0).succ == NONE
    assert definition.sinks == (0,)
    assert definition.root_spec == []


def test_empty_group_alone() -> None:
    definition = compile_(Group())

    assert definition.nodes == ()
    assert definition.task_count == 0
    assert definition.root_spec == []


def test_nested_empty_groups_are_elided() -> None:
    definition = compile_(Chain(a.message(), Group(Group(), Group()), b.message()))

    assert barriers(definition) == [BarrierNode(id=1, sources=(0,), targets=(2,))]
    assert piped(definition, 2) == [[], []]


def test_group_result_spec_nests() -> None:
    definition = compile_(Group(a.message(), Group(), Chain(b.message(), c.message())))

    assert definition.root_spec == [0, [], 3]


def test_pipe_ignore_pipes_nothing() -> None:
    definition = compile_(Chain(a.message(), b.message_with_options(pipe_ignore=True)))

    assert definition.task(2).pipe == NONE
    assert definition.task(2).pred == 1


def test_chain_step_inside_a_group_gets_the_outer_pipe() -> None:
    definition = compile_(Chain(a.message(), Group(Chain(b.message(), c.message()), d.message())))

    assert barriers(definition)[0] == BarrierNode(id=1, sources=(0,), targets=(2, 5))
    assert piped(definition, 2) == piped(definition, 5) == 0
    assert piped(definition, 4) == 2
    assert definition.root_spec == [4, 5]


# Delays


def _delays(definition: Definition) -> dict[str, int]:
    return {t.actor: t.delay_ms for t in tasks(definition)}


def test_with_delay_delays_a_message() -> None:
    assert _delays(compile_(Chain(a.message(), WithDelay(b.message(), 0.5)))) == {"a": 0, "b": 500}


def test_with_delay_accepts_a_timedelta() -> None:
    definition = compile_(WithDelay(a.message(), datetime.timedelta(minutes=1)))

    assert definition.task(0).delay_ms == 60_000


def test_with_delay_on_a_chain_delays_only_its_first_step() -> None:
    definition = compile_(WithDelay(Chain(a.message(), b.message(), c.message()), 2))

    assert _delays(definition) == {"a": 2000, "b": 0, "c": 0}


def test_with_delay_on_a_chain_skips_empty_first_steps() -> None:
    definition = compile_(WithDelay(Chain(Group(), a.message(), b.message()), 2))

    assert _delays(definition) == {"a": 2000, "b": 0}


def test_with_delay_on_a_group_delays_every_source() -> None:
    definition = compile_(WithDelay(Group(a.message(), Chain(b.message(), c.message())), 1))

    assert _delays(definition) == {"a": 1000, "b": 1000, "c": 0}


def test_with_delay_does_not_leak_to_later_steps() -> None:
    definition = compile_(Chain(WithDelay(a.message(), 1), b.message()))

    assert _delays(definition) == {"a": 1000, "b": 0}


def test_nested_delays_add_up() -> None:
    definition = compile_(
        WithDelay(WithDelay(Group(a.message(), WithDelay(b.message(), 0.1)), 1), 2)
    )

    assert _delays(definition) == {"a": 3000, "b": 3100}


def test_message_delay_adds_to_with_delay() -> None:
    message = a.message_with_options(delay=0.25)
    assert message.delay_ms == 250

    assert _delays(compile_(WithDelay(message, 1))) == {"a": 1250}


# The stored form


def test_definition_bytes_round_trip() -> None:
    definition = compile_(
        Chain(a.message(), Group(b.message(), WithDelay(d.message(), 1)), c.message(), Group())
    )

    loaded = Definition.from_bytes(definition.to_bytes)

    assert loaded == definition
    assert loaded.hash == definition.hash
    assert loaded.nodes == definition.nodes
    assert loaded.task(3).options == d.options
    assert loaded.task(3).delay_ms == 1000


def test_large_definition_round_trips_compressed() -> None:
    definition = compile_(Chain(Group(*[a.message()] * 1000), Group(*[b.message()] * 1000)))

    assert definition.to_bytes[0] & 0x01  # lz4 flag
    assert Definition.from_bytes(definition.to_bytes) == definition


@pytest.mark.parametrize("raw", [b"", b"\x10\x01", b"\x10\x95\x02\x90\x90\x90\xc0"], ids=repr)
def test_from_bytes_rejects_non_definitions(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        Definition.from_bytes(raw)


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


# Specs


def test_spec_leaves_in_canvas_order() -> None:
    assert spec_leaves(3) == [3]
    assert spec_leaves(None) == []
    assert spec_leaves([]) == []
    assert spec_leaves([1, [2, [], [3, 4]], 5]) == [1, 2, 3, 4, 5]


def test_assemble_builds_nested_results() -> None:
    results = {1: "one", 2: 2, 3: [3], 4: None}

    assert assemble(1, results) == "one"
    assert assemble(None, results) is None
    assert assemble([], results) == []
    assert assemble([1, [2, [], [3, 4]]], results) == ["one", [2, [], [[3], None]]]


def test_issue_example() -> None:
    canvas = Chain(
        add.message(1, 2),
        Group(add.message(10), add.message(20)),
        WithDelay(add.message_with_options(args=(5, 5), pipe_ignore=True), 0.5),
    )

    compiled = compile_canvas(canvas)
    definition = compiled.definition

    assert definition.root_spec == 5
    assert sorted(compiled.args) == [0, 2, 3, 5]
    assert barriers(definition) == [
        BarrierNode(id=1, sources=(0,), targets=(2, 3)),
        BarrierNode(id=4, sources=(2, 3), targets=(5,)),
    ]
    last = definition.task(5)
    assert (last.delay_ms, last.pipe, last.pred, last.succ) == (500, NONE, 4, NONE)
    assert assemble(definition.root_spec, {0: 3, 2: 13, 3: 23, 5: 10}) == 10
