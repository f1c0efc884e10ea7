"""
Unit tests of ``streamflow.model.definition``: the content hash (the same canvas, the
same hash; arguments aside, any change of shape or options changes it), the stored
bytes, and result specs.
"""

from __future__ import annotations

import pytest

from streamflow.api.actors import Actor
from streamflow.api.canvas import Chain, Group, WithDelay
from streamflow.api.compile import compile_canvas
from streamflow.model.definition import Definition, assemble, spec_leaves
from streamflow.model.errors import DecodeError
from streamflow.model.options import ActorOptions
from tests.canvas_helpers import _add, a, b, c, compile_, d

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
