"""Redis Cluster and Sentinel: the same publisher and command reader on the
topologies the gateway supports (the task's keys share one slot; sharded pub/sub)."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time

import pytest
import redis
from redis.cluster import RedisCluster as ClusterClient

import taskstream
from conftest import RedisServer, eventually, free_port

AGENT = "agent-py-cluster"


def test_publishes_and_reads_commands_on_a_redis_cluster(cluster, task_id):
    client = ClusterClient(host="127.0.0.1", port=cluster.ports[0], decode_responses=True)
    try:
        with taskstream.connect(cluster.url, retry_for=0) as publisher:
            task = publisher.task(AGENT, task_id)
            ids = [task.started(goal="cluster"), *task.publish_batch([
                {"type": "WorkflowLLMCallChunk", "data": {"chunk": "x", "chunk_index": 0}},
                {"type": "WorkflowStepStarted", "data": {"step": 1}, "idempotency_key": "s1"},
            ])]
            assert ids[1] is None
            assert task.step_started(step=1, idempotency_key="s1") == ids[2]
            stored = client.xrange(f"ts:{{{task_id}}}:log")
            assert [entry_id for entry_id, _ in stored] == [ids[0], ids[2]]
            assert json.loads(stored[1][1]["data"]) == {"step": 1}
            assert client.zscore("ts:tasks", f"{AGENT}/{task_id}") is not None
            with pytest.raises(taskstream.PublishError) as failure:
                publisher.publish("agent-else", task_id, "WorkflowStepStarted", {"step": 2})
            assert failure.value.code == "task_agent_mismatch"
            client.xadd(f"ts:{{{task_id}}}:ctl", {"command_id": "c1", "agent_id": AGENT, "command": "pause", "reason": "", "time": "t", "source": "rest"})
            assert [c.command_id for c in task.commands(block_ms=0)] == ["c1"]

        async def publish_async() -> str | None:
            async with await taskstream.connect_async(cluster.url, retry_for=0) as publisher:
                return await publisher.task(AGENT, task_id).completed(total_cost=1.0)

        assert asyncio.run(publish_async()) > ids[2]
    finally:
        client.close()


@pytest.fixture
def sentinel():
    """A master and one redis-sentinel watching it as `mymaster`."""
    master = RedisServer()
    port = free_port()
    directory = tempfile.mkdtemp(prefix="taskstream-py-sentinel-")
    config = os.path.join(directory, "sentinel.conf")
    with open(config, "w") as file:
        file.write(f"port {port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {master.port} 1\n")
    process = subprocess.Popen(["redis-sentinel", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = redis.Redis(port=port, decode_responses=True)
        eventually(lambda: _master_known(probe), what="redis-sentinel to know mymaster")
        yield master, f"redis+sentinel://127.0.0.1:{port}/mymaster"
    finally:
        process.kill()
        process.wait()
        master.stop()


def _master_known(probe: redis.Redis) -> bool:
    try:
        return probe.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster") is not None
    except redis.RedisError:
        return False


def test_publishes_through_redis_sentinel(sentinel, task_id):
    master, url = sentinel
    with taskstream.connect(url, retry_for=0) as publisher:
        first = publisher.publish(AGENT, task_id, "WorkflowStarted", {"goal": "sentinel"})
    assert [entry_id for entry_id, _ in master.client.xrange(f"ts:{{{task_id}}}:log")] == [first]

    async def publish_async() -> str | None:
        async with await taskstream.connect_async(url, retry_for=0) as publisher:
            return await publisher.publish(AGENT, task_id, "WorkflowStepStarted", {"step": 1})

    assert asyncio.run(publish_async()) > first
    assert time.time()


def test_custom_types_are_declared_to_the_script_on_a_redis_cluster(cluster, task_id):
    """On a Cluster the script cannot read the gateway's registry key (another slot): declared types pass."""
    client = ClusterClient(host="127.0.0.1", port=cluster.ports[0], decode_responses=True)
    custom_types = {"ReviewRequested": {"category": "review"}, "ReviewApproved": {"category": "review", "terminal": "completed"}}
    try:
        with taskstream.connect(cluster.url, retry_for=0) as undeclared:
            with pytest.raises(taskstream.PublishError) as failure:
                undeclared.publish(AGENT, task_id, "ReviewRequested", {})
            assert (failure.value.code, failure.value.field) == ("invalid_event", "type")
        with taskstream.connect(cluster.url, retry_for=0, custom_types=custom_types) as publisher:
            requested = publisher.publish(AGENT, task_id, "ReviewRequested", {"by": "ana"})
            approved = publisher.publish(AGENT, task_id, "ReviewApproved", {})
            assert [entry_id for entry_id, _ in client.xrange(f"ts:{{{task_id}}}:log")] == [requested, approved]
            assert client.hget("{ts:tasks}:status", f"{AGENT}/{task_id}") == f"{approved} completed"
            with pytest.raises(taskstream.PublishError) as failure:
                publisher.publish(AGENT, task_id, "WorkflowStepStarted", {"step": 1})
            assert failure.value.code == "task_ended"
    finally:
        client.close()
