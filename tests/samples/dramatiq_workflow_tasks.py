"""A module written against dramatiq-workflow's API, switched to streamflow by its
imports alone."""

import os
import threading
import time

import streamflow.compat.dramatiq as dramatiq
from streamflow.compat.dramatiq import RedisBackend, RedisBroker
from streamflow.compat.dramatiq_workflow import (
    Chain,
    Group,
    WithDelay,
    Workflow,
    WorkflowMiddleware,
)

broker = RedisBroker(url=os.environ["SAMPLE_REDIS_URL"])
broker.add_middleware(WorkflowMiddleware(RedisBackend()))
dramatiq.set_broker(broker)

done = []
lock = threading.Lock()


@dramatiq.actor
def step(name):
    with lock:
        done.append((name, time.monotonic()))


def nightly():
    return Workflow(
        Chain(
            step.message("extract"),
            Group(step.message("clean"), Chain(step.message("index"), Chain())),
            WithDelay(step.message("load"), delay=300),
        )
    ).run()
