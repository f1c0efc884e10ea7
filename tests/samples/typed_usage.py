"""Checked by mypy in tests/test_typing.py, never run: a line ending in ``# E: <code>``
must get that error and no other line any; ``# R: <type>`` is what its ``reveal_type``
must say."""

from __future__ import annotations

from typing import reveal_type

from streamflow import App, Chain, Group

app = App("redis://127.0.0.1:6399")


@app.actor
def add(x: int, y: int) -> int:
    return x + y


@app.actor(queue="io", max_retries=3)
async def fetch(url: str) -> bytes:
    return url.encode()


@app.actor
def total(values: list[int]) -> int:
    return sum(values)


add.message(1, 2)
add.message("x", 2)  # E: arg-type
add.message(1)  # E: call-arg
add.piped(1)  # a chain step: the previous result comes last
add.send(1, y=2)
add.send(1, z=2)  # E: call-arg
fetch.send(b"x")  # E: arg-type
add.message_with_options(args=(1,), delay=5)

reveal_type(add.send(1, 2).result())  # R: int
reveal_type(fetch.send("u").result())  # R: bytes
reveal_type(app.submit(add.message(1, 2)).result())  # R: int
reveal_type(app.submit(Chain(fetch.message("u"), add.piped(1))).result())  # R: int
pairs = Group(add.message(1, 2), add.message(3, 4))
reveal_type(app.submit(pairs).result())  # R: list[Any]
fan = Chain(add.message(1, 2), Group(add.piped(3)), total.piped())
reveal_type(app.submit(fan).result())  # R: int
late: str = add.send(1, 2).result()  # E: assignment


async def main() -> None:
    handle = await add.send_async(1, 2)
    reveal_type(await handle.result())  # R: int
    other = await app.submit_async(Chain(add.message(1, 2), total.piped()))
    reveal_type(await other.result())  # R: int
