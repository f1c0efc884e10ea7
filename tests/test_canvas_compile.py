"""
Unit tests of ``streamflow.api.compile``: a canvas compiled to tasks and barriers in
canvas order, what each task is piped, the result spec, and delays.
"""

from __future__ import annotations

import datetime

from streamflow.api.canvas import Chain, Group, WithDelay
from streamflow.api.compile import compile_canvas
from streamflow.model.definition import NONE, BarrierNode, Definition, assemble
from tests.canvas_helpers import a, add, b, barriers, c, compile_, d, tasks


def piped(definition: Definition, node: int) -> object:
    """The spec piped into ``node`` (None: nothing piped)."""
    pipe = definition.task(node).pipe
    return None if pipe == NONE else definition.specs[pipe]


# Node ids and arguments


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


# The issue's example


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
