"""Control commands (SPEC §4.2, §5) read by a Python worker from the task's
control stream through its consumer group: queued by the real gateway's REST
routes, resumed after a worker restart, other agents' entries skipped."""
from __future__ import annotations

import threading
import time

import pytest

import taskstream
from conftest import Gateway, RedisServer, command

AGENT = "agent-py"


def test_commands_arrive_in_order_with_their_reason(redis_server: RedisServer, gateway: Gateway, task_id):
    pause = command(gateway, AGENT, task_id, "pause", "needs review")
    resume = command(gateway, AGENT, task_id, "resume")
    with taskstream.connect(redis_server.url) as publisher:
        received = [(c.command_id, c.command, c.reason, c.source) for c in publisher.commands(AGENT, task_id, block_ms=0)]
    assert received == [(pause, "pause", "needs review", "rest"), (resume, "resume", None, "rest")]


def test_a_restarted_worker_resumes_after_what_it_acknowledged(redis_server, gateway, task_id):
    first = command(gateway, AGENT, task_id, "pause")
    second = command(gateway, AGENT, task_id, "resume")
    with taskstream.connect(redis_server.url) as worker:
        commands = worker.task(AGENT, task_id).commands(block_ms=0)
        assert next(commands).command_id == first
        # Asking for the next one acknowledged the first; the second is given but not acknowledged: a crash here.
        assert next(commands).command_id == second
        commands.close()
    third = command(gateway, AGENT, task_id, "cancel", "stop")
    with taskstream.connect(redis_server.url) as restarted:
        seen = [c.command_id for c in restarted.commands(AGENT, task_id, block_ms=0)]
    assert seen == [second, third]
    with taskstream.connect(redis_server.url) as again:
        assert list(again.commands(AGENT, task_id, block_ms=0)) == []
        # Another worker name is another consumer group, with its own position.
        assert [c.command_id for c in again.commands(AGENT, task_id, worker="auditor", block_ms=0)] == [first, second, third]


def test_ack_marks_a_command_handled_before_the_loop_moves_on(redis_server, gateway, task_id):
    only = command(gateway, AGENT, task_id, "cancel")
    with taskstream.connect(redis_server.url) as worker:
        for received in worker.commands(AGENT, task_id, block_ms=0):
            received.ack()
            break
    with taskstream.connect(redis_server.url) as restarted:
        assert list(restarted.commands(AGENT, task_id, block_ms=0)) == []
    assert only


def test_a_waiting_worker_gets_a_command_queued_later(redis_server, gateway, task_id):
    with taskstream.connect(redis_server.url) as worker:
        queued: list[str] = []
        timer = threading.Timer(0.5, lambda: queued.append(command(gateway, AGENT, task_id, "pause")))
        timer.start()
        received = next(worker.commands(AGENT, task_id))
        timer.join()
        assert received.command_id == queued[0]
        received.ack()
        # With block_ms, the iteration ends once nothing came in time.
        started = time.monotonic()
        assert list(worker.commands(AGENT, task_id, block_ms=300)) == []
        assert time.monotonic() - started >= 0.25


def test_entries_for_another_agent_or_none_are_acknowledged_and_skipped(redis_server, gateway, task_id):
    key = f"ts:{{{task_id}}}:ctl"
    redis_server.client.xadd(key, {"command_id": "other-1", "command": "cancel", "reason": "", "time": "t", "source": "rest", "agent_id": "agent-other"})
    # No agent_id: not known to be ours (the gateway's reader skips it too).
    redis_server.client.xadd(key, {"command_id": "nobody-1", "command": "cancel", "reason": "", "time": "t", "source": "rest"})
    mine = command(gateway, AGENT, task_id, "pause")
    redis_server.client.xadd(key, {"command_id": "mine-2", "command": "resume", "reason": "", "time": "t", "source": "rest", "agent_id": AGENT})
    with taskstream.connect(redis_server.url) as worker:
        assert [c.command_id for c in worker.commands(AGENT, task_id, block_ms=0)] == [mine, "mine-2"]
    assert redis_server.client.xpending(key, "workflow")["pending"] == 0


def test_commands_need_a_redis_connection(gateway, task_id):
    with taskstream.connect(gateway.url) as publisher:
        with pytest.raises(taskstream.PublishError) as failure:
            publisher.commands(AGENT, task_id)
    assert (failure.value.code, failure.value.field) == ("unsupported", "url")


def test_a_waiting_worker_rides_out_a_redis_restart(task_id):
    server = RedisServer("--appendonly", "yes")
    key = f"ts:{{{task_id}}}:ctl"
    entry = {"command_id": "", "command": "pause", "reason": "", "time": "t", "source": "rest", "agent_id": AGENT}
    try:
        server.client.xadd(key, {**entry, "command_id": "before"})
        with taskstream.connect(server.url, retry_for=20) as worker:
            commands = worker.commands(AGENT, task_id)
            assert next(commands).command_id == "before"
            received: list[str] = []
            reader = threading.Thread(target=lambda: received.append(next(commands).command_id))
            reader.start()  # acknowledges "before", then waits
            time.sleep(0.5)
            server.kill()
            time.sleep(1)  # the reader's reads fail meanwhile, and are retried
            server.start()
            server.client.xadd(key, {**entry, "command_id": "after"})
            reader.join(20)
            assert received == ["after"]
            commands.close()
    finally:
        server.stop()
