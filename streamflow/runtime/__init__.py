"""The runtime: a worker's parts as objects (consumer, executor, projector, timer,
recovery, watch, sweep), rate limits, hooks and the running task's context."""
