"""The asyncio publisher: the same API with coroutines, over Redis and HTTP."""
from __future__ import annotations

import asyncio

import pytest

import taskstream
from conftest import command, history

AGENT = "agent-py-async"


@pytest.mark.parametrize("transport", ["redis", "http"])
def test_publishes_batches_and_raises_like_the_sync_publisher(transport, redis_server, gateway, task_id):
    async def workflow() -> list[str | None]:
        async with await taskstream.connect_async(redis_server.url if transport == "redis" else gateway.url, retry_for=0) as publisher:
            task = publisher.task(AGENT, task_id)
            ids = [await task.started(goal="async"), await task.llm_call_chunk(chunk="a", chunk_index=0)]
            ids += await publisher.publish_batch(AGENT, task_id, [
                {"type": "WorkflowStepStarted", "data": {"step": 1}},
                {"type": "WorkflowCompleted", "data": {"total_cost": 0.1}},
            ])
            with pytest.raises(taskstream.PublishError) as failure:
                await publisher.publish(AGENT, task_id, "WorkflowStepStarted", {"step": 2})
            assert failure.value.code == "task_ended"
            with pytest.raises(taskstream.PublishError) as failure:
                await task.failed(error=None)  # type: ignore[arg-type]
            assert (failure.value.code, failure.value.field) == ("invalid_event", "data.error")
            return ids

    ids = asyncio.run(workflow())
    assert ids[1] is None
    assert [e["id"] for e in history(gateway, AGENT, task_id)] == [ids[0], ids[2], ids[3]]


def test_async_commands_resume_after_what_was_acknowledged(redis_server, gateway, task_id):
    pause = command(gateway, AGENT, task_id, "pause")

    async def worker() -> list[str]:
        async with await taskstream.connect_async(redis_server.url) as publisher:
            seen = []
            async for received in publisher.task(AGENT, task_id).commands():
                seen.append(received.command)
                if received.command == "pause":
                    # Queue the resume while this worker waits for it.
                    await asyncio.to_thread(command, gateway, AGENT, task_id, "resume")
                else:
                    await received.ack()
                    break
            return seen

    assert asyncio.run(worker()) == ["pause", "resume"]

    async def restarted() -> list[str]:
        async with await taskstream.connect_async(redis_server.url) as publisher:
            return [c.command async for c in publisher.commands(AGENT, task_id, block_ms=0)]

    assert asyncio.run(restarted()) == []
    assert pause


def test_async_commands_need_a_redis_connection(gateway, task_id):
    async def run() -> None:
        async with await taskstream.connect_async(gateway.url) as publisher:
            publisher.commands(AGENT, task_id)

    with pytest.raises(taskstream.PublishError) as failure:
        asyncio.run(run())
    assert failure.value.code == "unsupported"
