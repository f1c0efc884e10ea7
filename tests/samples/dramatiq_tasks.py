"""A tasks module written against dramatiq's API, as a team's would be: switched to
streamflow by its imports alone (test_compat checks that nothing else names it)."""

import os
import threading
import time

import streamflow.compat.dramatiq as dramatiq
from streamflow.compat.dramatiq import (
    ConcurrentRateLimiter,
    RedisBackend,
    RedisBroker,
    Results,
    group,
)

backend = RedisBackend(url=os.environ["SAMPLE_REDIS_URL"])
broker = RedisBroker(url=os.environ["SAMPLE_REDIS_URL"])
broker.add_middleware(Results(backend=backend))
dramatiq.set_broker(broker)

attempts = {}
reports = []
lock = threading.Lock()


def attempt(key):
    with lock:
        attempts[key] = attempts.get(key, 0) + 1
        return attempts[key]


@dramatiq.actor(store_results=True)
def count_words(text):
    return len(text.split())


@dramatiq.actor(store_results=True)
def add(x, y=0):
    return x + y


@dramatiq.actor(max_retries=3, min_backoff=10, max_backoff=50, store_results=True)
def flaky(key, failures):
    n = attempt(key)
    if n <= failures:
        raise RuntimeError(f"attempt {n} of {key} fails")
    return n


@dramatiq.actor(max_retries=1, store_results=True)
def not_yet(key):
    if attempt(key) == 1:
        raise dramatiq.Retry(delay=300)
    return "ready"


@dramatiq.actor(time_limit=200, max_retries=0, store_results=True)
def too_slow():
    time.sleep(3)


@dramatiq.actor(max_age=200, priority=5, store_results=True)
def perishable():
    return "fresh"


@dramatiq.actor(throws=KeyError, store_results=True)
def lookup(key):
    attempt("lookup")
    return {}[key]


@dramatiq.actor(max_retries=1, min_backoff=10, on_retry_exhausted="gave_up", store_results=True)
def hopeless():
    raise RuntimeError("never works")


@dramatiq.actor
def gave_up(message_data, retry_info):
    with lock:
        reports.append((message_data["actor_name"], retry_info["retries"]))


@dramatiq.actor(queue_name="reports")
def report(message_data, result):
    with lock:
        reports.append((message_data["actor_name"], result))


mutex = ConcurrentRateLimiter(backend, "sample-mutex", limit=1)


@dramatiq.actor(store_results=True)
def exclusive():
    with mutex.acquire(raise_on_failure=False) as acquired:
        return acquired


def word_counts(texts):
    counts = group([count_words.message(text) for text in texts]).run()
    return counts.get_results(block=True, timeout=10_000)


def running_total():
    pipe = add.message(1, 2) | add.message(3) | add.message(4)
    return pipe.run().get_results(block=True, timeout=10_000)
