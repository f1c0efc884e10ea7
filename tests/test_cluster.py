"""The groundwork for Redis Cluster (issue #18): the suite's own local cluster, and the
property the engine's scripts rely on there: every key a script touches for a workflow
(its own keys and its shard's shared ones) is in one slot."""

from __future__ import annotations

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisClusterException

from streamflow.model.messages import shard_of
from streamflow.store.keys import Keys, new_workflow_id
from tests.cluster import LocalCluster

pytestmark = pytest.mark.integration

SHARDS = 16


def _keys_of(keys: Keys, workflow_id: str) -> list[str]:
    """Every key a script may touch for ``workflow_id``."""
    shard = shard_of(workflow_id)
    wf = keys.workflow(workflow_id)
    return [
        wf.log,
        wf.idx,
        wf.archive,
        wf.results,
        wf.tombstone,
        wf.active,
        wf.wake_due,
        wf.expiry,
        wf.ended,
        keys.definition(shard, "0" * 32),
        keys.definitions(shard),
        keys.queue(shard, "default"),
        keys.delayed(shard, "default"),
        keys.wake(shard),
        keys.beats(shard),
    ]


def test_the_local_cluster_has_three_masters_covering_every_slot(
    redis_cluster: LocalCluster,
) -> None:
    host, port = redis_cluster.nodes[0]
    client = RedisCluster(host=host, port=port)
    try:
        assert len(client.get_primaries()) == 3
        info = client.cluster_info()
        assert info["cluster_state"] == "ok"
        assert int(info["cluster_slots_assigned"]) == 16384
    finally:
        client.close()


def test_a_script_reaches_every_key_of_a_workflow_on_its_shard(
    redis_cluster: LocalCluster,
) -> None:
    keys = Keys()
    host, port = redis_cluster.nodes[0]
    client = RedisCluster(host=host, port=port)
    touch = "for i, key in ipairs(KEYS) do redis.call('EXISTS', key) end return #KEYS"
    try:
        for shard in range(SHARDS):
            names = _keys_of(keys, new_workflow_id(shard))
            assert len({key_slot(name.encode()) for name in names}) == 1
            # One script over all of them: routed to the slot's master, no CROSSSLOT.
            assert client.eval(touch, len(names), *names) == len(names)
        with pytest.raises(RedisClusterException):
            # Keys of two shards in one script: refused (what no script of ours does).
            client.eval(touch, 2, keys.active(0), keys.active(1))
    finally:
        client.close()


def test_sixteen_shards_per_master_spread_over_the_masters(redis_cluster: LocalCluster) -> None:
    keys = Keys()
    host, port = redis_cluster.nodes[0]
    client = RedisCluster(host=host, port=port)
    try:
        owners = [client.get_node_from_key(keys.active(shard)).name for shard in range(3 * SHARDS)]
    finally:
        client.close()

    shares = sorted(owners.count(name) for name in set(owners))
    assert len(shares) == 3
    assert shares[-1] - shares[0] <= 2, shares
