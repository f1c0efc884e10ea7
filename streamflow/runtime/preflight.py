"""What a worker checks of Redis before it starts: a Redis that may evict keys is
refused (the log is the truth), settings that waste memory are warned about; on a
cluster, every master is checked."""

from __future__ import annotations

from typing import Any

import redis

from streamflow.model.errors import StreamflowError
from streamflow.store.cluster import is_cluster


def check_server(client: redis.Redis, log: Any) -> None:
    """Check ``client``'s Redis (each master of a cluster).

    Raises:
        StreamflowError: a server's ``maxmemory-policy`` is not ``noeviction``.
    """
    if is_cluster(client):
        cluster: Any = client
        for node in cluster.get_primaries():
            _check_one(cluster.get_redis_connection(node), log, node=node.name)
    else:
        _check_one(client, log)


def _check_one(client: redis.Redis, log: Any, node: str | None = None) -> None:
    where = f" (node {node})" if node else ""
    try:
        config: Any = client.config_get("maxmemory-policy")
        node_bytes: Any = client.config_get("stream-node-max-bytes")
    except redis.ResponseError as exc:  # CONFIG disabled (managed Redis)
        log.warning("redis_config_unreadable", error=str(exc), node=node)
        return
    policy = config.get(b"maxmemory-policy") or config.get("maxmemory-policy") or b""
    policy = policy.decode() if isinstance(policy, bytes) else str(policy)
    if policy != "noeviction":
        raise StreamflowError(
            f"Redis maxmemory-policy is {policy!r}{where}; streamflow needs 'noeviction' "
            "(eviction could delete a workflow's log, the only truth)"
        )
    size = node_bytes.get(b"stream-node-max-bytes") or node_bytes.get("stream-node-max-bytes")
    if size is not None and int(size) > 1024:
        log.warning(
            "stream_node_max_bytes_large",
            value=int(size),
            node=node,
            advice="set stream-node-max-bytes to 512: each log preallocates a node",
        )
