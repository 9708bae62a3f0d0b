"""Publishing with the sync Publisher over Redis (the append script) and over a
gateway's HTTP API, against a real redis-server and a real gateway."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import pytest
import redis

import taskstream
from conftest import Gateway, RedisServer, history, http_json, start_gateway

AGENT = "agent-py"


@pytest.fixture(params=["redis", "http"])
def publisher(request: pytest.FixtureRequest, redis_server: RedisServer, gateway: Gateway):
    url = redis_server.url if request.param == "redis" else gateway.url
    with taskstream.connect(url, retry_for=0) as publisher:
        yield publisher


def test_publishes_events_that_the_gateway_serves(publisher, gateway, redis_server, task_id):
    first = publisher.publish(AGENT, task_id, "WorkflowStarted", {"goal": "write a haiku", "budget_limit": 1.5})
    second = publisher.publish(AGENT, task_id, "WorkflowStepStarted", {"step": 1, "name": "draft", "custom": [1, 2]})
    assert first < second
    events = history(gateway, AGENT, task_id)
    assert [(e["id"], e["type"], e["data"]) for e in events] == [
        (first, "WorkflowStarted", {"goal": "write a haiku", "budget_limit": 1.5}),
        (second, "WorkflowStepStarted", {"step": 1, "name": "draft", "custom": [1, 2]}),
    ]
    # The task index the dashboard lists (GET /tasks) is updated too. A gateway writes its index
    # updates every 25 ms and before it reads the index, so ask the gateway, not Redis.
    status, body = http_json("GET", f"{gateway.url}/api/v1/tasks?agent={AGENT}&limit=200")
    assert status == 200, body
    assert any(task["taskId"] == task_id for task in body["tasks"])


def test_typed_helpers_publish_each_type_with_its_fields(publisher, gateway, task_id):
    task = publisher.task(AGENT, task_id)
    at = datetime(2026, 11, 24, 10, 0, 0, 123000, tzinfo=timezone.utc)
    task.started(goal="g", max_iterations=3, time=at)
    task.llm_call_started(model="gpt-4o", estimated_cost=0.01)
    assert task.llm_call_chunk(chunk="Hel", chunk_index=0, call_id="c1") is None
    task.llm_call_completed(model="gpt-4o", cost=0.02, content="Hello")
    task.tool_call_started(tool_name="search", tool_call_id="t1", arguments={"q": "x"})
    task.tool_call_completed(tool_name="search", tool_call_id="t1", success=True, result=["r"])
    task.budget_warning(cost=0.8, limit=1.0, usage_percentage=80)
    task.completed(final_response="done", total_cost=0.03)
    events = history(gateway, AGENT, task_id)
    assert [e["type"] for e in events] == [
        "WorkflowStarted", "WorkflowLLMCallStarted", "WorkflowLLMCallCompleted", "WorkflowToolCallStarted",
        "WorkflowToolCallCompleted", "WorkflowBudgetWarning", "WorkflowCompleted",
    ]
    assert events[0]["time"] == "2026-11-24T10:00:00.123Z"
    assert events[0]["data"] == {"goal": "g", "max_iterations": 3}  # fields left at None are not sent
    assert events[3]["data"]["arguments"] == {"q": "x"}


def test_batch_is_all_or_nothing(publisher, gateway, task_id):
    ids = publisher.publish_batch(AGENT, task_id, [
        {"type": "WorkflowStarted", "data": {"goal": "batch"}},
        {"type": "WorkflowLLMCallChunk", "data": {"chunk": "x", "chunk_index": 0}},
        {"type": "WorkflowStepStarted", "data": {"step": "one"}, "idempotency_key": "step-one"},
    ])
    assert ids[0] is not None and ids[1] is None and ids[2] > ids[0]
    with pytest.raises(taskstream.PublishError) as failure:
        publisher.publish_batch(AGENT, task_id, [
            {"type": "WorkflowStepStarted", "data": {"step": 2}},
            {"type": "WorkflowLLMCallStarted", "data": {"model": 7}},
        ])
    assert (failure.value.code, failure.value.field) == ("invalid_event", "[1].data.model")
    assert publisher.publish_batch(AGENT, task_id, []) == []
    assert len(history(gateway, AGENT, task_id)) == 2


def test_an_unknown_type_is_refused_by_the_script_or_the_gateway_and_nothing_is_stored(publisher, gateway, task_id):
    # Types the SDK does not know (custom types) go on unchecked: the log's side decides.
    with pytest.raises(taskstream.PublishError) as failure:
        publisher.publish_batch(AGENT, task_id, [
            {"type": "WorkflowStarted", "data": {}},
            {"type": "WorkflowDanced", "data": {}},
        ])
    assert (failure.value.code, failure.value.field) == ("invalid_event", "[1].type")
    assert history(gateway, AGENT, task_id) == []


def test_the_same_idempotency_key_stores_an_event_once(publisher, gateway, task_id):
    first = publisher.publish(AGENT, task_id, "WorkflowStepStarted", {"step": 1}, idempotency_key="step-1")
    again = publisher.publish(AGENT, task_id, "WorkflowStepStarted", {"step": 1}, idempotency_key="step-1")
    assert first == again
    assert len(history(gateway, AGENT, task_id)) == 1


def test_ephemeral_chunks_go_live_but_are_not_stored(publisher, redis_server, gateway, task_id):
    listener = redis_server.client.pubsub()
    listener.subscribe(f"ts:{{{task_id}}}:live")
    assert listener.get_message(timeout=5)["type"] == "subscribe"
    assert publisher.publish(AGENT, task_id, "WorkflowLLMCallChunk", {"chunk": "Hi", "chunk_index": 0, "call_id": "c1"}) is None
    message = listener.get_message(timeout=5)
    listener.close()
    envelope = json.loads(message["data"])
    assert envelope["type"] == "WorkflowLLMCallChunk" and "id" not in envelope
    assert envelope["data"] == {"chunk": "Hi", "chunk_index": 0, "call_id": "c1"}
    assert history(gateway, AGENT, task_id) == []


@pytest.mark.parametrize(
    "call, code, field",
    [
        (lambda p, t: p.publish(AGENT, t, "WorkflowFailed", {}), "invalid_event", "data.error"),
        (lambda p, t: p.publish(AGENT, t, "WorkflowStepStarted", {"step": True}), "invalid_event", "data.step"),
        (lambda p, t: p.publish(AGENT, t, "WorkflowStarted", {"max_iterations": -1}), "invalid_event", "data.max_iterations"),
        (lambda p, t: p.publish(AGENT, t, "WorkflowStarted", {"budget_limit": float("nan")}), "invalid_event", "data.budget_limit"),
        (lambda p, t: p.publish(AGENT, t, "WorkflowStarted", "not a dict"), "invalid_event", "data"),
        (lambda p, t: p.publish(AGENT, t, "WorkflowStarted", {}, time="yesterday"), "invalid_event", "time"),
        (lambda p, t: p.publish(AGENT, t, "WorkflowStarted", {}, idempotency_key=""), "invalid_event", "idempotency_key"),
        (lambda p, t: p.publish_batch(AGENT, t, [{"type": "WorkflowStarted", "dta": {}}]), "invalid_event", "[0].dta"),
        (lambda p, t: p.publish("agent/1", t, "WorkflowStarted", {}), "invalid_id", "agentId"),
        (lambda p, t: p.publish(AGENT, "", "WorkflowStarted", {}), "invalid_id", "taskId"),
    ],
)
def test_bad_input_raises_publish_error_naming_the_field(publisher, gateway, task_id, call, code, field):
    with pytest.raises(taskstream.PublishError) as failure:
        call(publisher, task_id)
    assert (failure.value.code, failure.value.field) == (code, field)
    assert field in str(failure.value)
    assert history(gateway, AGENT, task_id) == []


def test_nothing_is_appended_after_a_terminal_event(publisher, gateway, task_id):
    publisher.publish(AGENT, task_id, "WorkflowCancelled", {"reason": "user"})
    with pytest.raises(taskstream.PublishError) as failure:
        publisher.publish(AGENT, task_id, "WorkflowStepStarted", {"step": 9})
    assert (failure.value.code, failure.value.field, failure.value.retryable) == ("task_ended", "taskId", False)
    assert len(history(gateway, AGENT, task_id)) == 1


def test_a_task_of_another_agent_is_refused(publisher, task_id):
    publisher.publish("agent-owner", task_id, "WorkflowStarted", {})
    with pytest.raises(taskstream.PublishError) as failure:
        publisher.publish(AGENT, task_id, "WorkflowStepStarted", {"step": 1})
    assert (failure.value.code, failure.value.field) == ("task_agent_mismatch", "taskId")


def test_an_event_over_max_event_bytes_is_refused_by_the_gateway(gateway, task_id):
    with taskstream.connect(gateway.url, retry_for=0) as publisher:
        with pytest.raises(taskstream.PublishError) as failure:
            publisher.publish(AGENT, task_id, "WorkflowStarted", {"goal": "x" * 70_000})
    assert (failure.value.code, failure.value.field) == ("payload_too_large", "data")


@pytest.mark.parametrize("url", ["redis://127.0.0.1:{port}", "http://127.0.0.1:{port}"])
def test_an_unreachable_log_or_gateway_is_unavailable(url, task_id):
    from conftest import free_port

    with taskstream.connect(url.format(port=free_port()), retry_for=0) as publisher:
        with pytest.raises(taskstream.PublishError) as failure:
            publisher.publish(AGENT, task_id, "WorkflowStarted", {})
    assert failure.value.code == "unavailable" and failure.value.retryable


def test_a_gateway_with_auth_takes_the_token_and_refuses_without_it(auth_gateway, task_id):
    from conftest import jwt

    allowed = jwt({"sub": "py", "exp": int(time.time()) + 600, "taskstream": {"publish": [f"{AGENT}/*"]}})
    with taskstream.connect(auth_gateway.url, allowed, retry_for=0) as publisher:
        assert publisher.publish(AGENT, task_id, "WorkflowStarted", {})
        with pytest.raises(taskstream.PublishError) as failure:
            publisher.publish("agent-else", task_id, "WorkflowStarted", {})
        assert failure.value.code == "forbidden"
    with taskstream.connect(auth_gateway.url, retry_for=0) as anonymous:
        with pytest.raises(taskstream.PublishError) as failure:
            anonymous.publish(AGENT, task_id, "WorkflowStepStarted", {"step": 1})
        assert failure.value.code == "unauthorized"


@pytest.mark.parametrize(
    "url, token, field",
    [
        ("ftp://x", None, "url"),
        ("redis+cluster://nohost", None, "url"),
        ("redis+sentinel://127.0.0.1:26379", None, "url"),
        ("redis://127.0.0.1:6379", "a-token", "token"),
    ],
)
def test_a_bad_url_is_refused_at_connect(url, token, field):
    with pytest.raises(taskstream.PublishError) as failure:
        taskstream.connect(url, token)
    assert (failure.value.code, failure.value.field) == ("invalid_url", field)


def test_a_closed_publisher_refuses_to_publish(redis_server, task_id):
    publisher = taskstream.connect(redis_server.url)
    publisher.close()
    with pytest.raises(taskstream.PublishError) as failure:
        publisher.publish(AGENT, task_id, "WorkflowStarted", {})
    assert failure.value.code == "closed"


def test_a_publish_retries_through_a_redis_outage_and_stores_the_event_once(task_id):
    server = RedisServer()
    gateway = None
    try:
        with taskstream.connect(server.url, retry_for=20) as publisher:
            publisher.publish(AGENT, task_id, "WorkflowStarted", {})
            server.kill()
            result: dict[str, object] = {}
            worker = threading.Thread(target=lambda: result.update(id=publisher.publish(AGENT, task_id, "WorkflowStepStarted", {"step": 1})))
            worker.start()
            time.sleep(1)  # the publish is failing and retrying meanwhile
            assert worker.is_alive()
            server.start()
            worker.join(20)
            assert isinstance(result.get("id"), str)
        gateway = start_gateway(REDIS_URL=server.url)
        stored = history(gateway, AGENT, task_id)
        # The restarted redis-server kept nothing from before (no persistence): the retried event, once.
        assert [(e["id"], e["type"]) for e in stored] == [(result["id"], "WorkflowStepStarted")]
        [key] = server.client.keys(f"ts:{{{task_id}}}:idem:*")  # the retry carried a generated idempotency key
        assert len(key.rsplit(":", 1)[1]) == 16
        assert 0 < server.client.ttl(key) <= 20 + 60  # kept for the retry window, not IDEMPOTENCY_S
    finally:
        if gateway is not None:
            gateway.stop()
        server.stop()


def _listed_status(gateway: Gateway, task_id: str) -> str:
    status, body = http_json("GET", f"{gateway.url}/api/v1/tasks?agent={AGENT}&limit=1000")
    assert status == 200, body
    return next(task["status"] for task in body["tasks"] if task["taskId"] == task_id)


def test_the_task_list_shows_the_status_the_events_set(publisher, gateway, task_id):
    task = publisher.task(AGENT, task_id)
    task.started(goal="status")
    assert _listed_status(gateway, task_id) == "running"
    task.paused(reason="lunch")
    task.step_started(step=2)  # a paused task stays paused until WorkflowResumed
    assert _listed_status(gateway, task_id) == "paused"
    task.resumed()
    assert _listed_status(gateway, task_id) == "running"
    task.publish_batch([
        {"type": "WorkflowPaused", "data": {}},
        {"type": "WorkflowLLMCallChunk", "data": {"chunk": "x", "chunk_index": 0}},
        {"type": "WorkflowCompleted", "data": {"final_response": "ok"}},
    ])
    assert _listed_status(gateway, task_id) == "completed"


def test_an_llm_call_in_flight_keeps_its_chunks_until_it_completes(publisher, redis_server, gateway, task_id):
    task = publisher.task(AGENT, task_id)
    task.llm_call_started(model="m")
    task.llm_call_chunk(chunk="Hel", chunk_index=0)
    task.llm_call_chunk(chunk="lo", chunk_index=1)
    inflight = f"ts:{{{task_id}}}:inflight"
    assert redis_server.client.exists(inflight) == 1
    assert 0 < redis_server.client.ttl(inflight) <= 3600  # INFLIGHT_TTL_S
    task.llm_call_completed(model="m")
    # A completion without content is stored with the text kept in flight.
    assert history(gateway, AGENT, task_id)[-1]["data"]["content"] == "Hello"
    assert redis_server.client.hget(inflight, "open") in (None, "[]")


CUSTOM_TYPES = {
    "types": {
        "ReviewRequested": {"category": "review", "payload": {"type": "object"}},
        "ReviewRejected": {"category": "review", "terminal": "failed", "payload": {"type": "object"}},
    }
}


def test_declared_custom_types_set_the_task_status(redis_server, gateway, task_id, tmp_path):
    file = tmp_path / "event-types.json"
    file.write_text(json.dumps(CUSTOM_TYPES))
    with taskstream.connect(redis_server.url, retry_for=0, custom_types=file) as publisher:
        task = publisher.task(AGENT, task_id)
        task.publish("ReviewRequested", {"by": "ana"})
        assert _listed_status(gateway, task_id) == "running"
        task.publish("ReviewRejected", {})
        assert _listed_status(gateway, task_id) == "failed"
        with pytest.raises(taskstream.PublishError) as failure:
            task.started()
        assert failure.value.code == "task_ended"


def test_custom_types_read_from_the_gateways_event_types_route(redis_server, task_id, tmp_path):
    file = tmp_path / "event-types.json"
    file.write_text(json.dumps(CUSTOM_TYPES))
    typed = start_gateway(REDIS_URL=redis_server.url, EVENT_TYPES_FILE=str(file))
    try:
        status, catalogue = http_json("GET", f"{typed.url}/api/v1/event-types")
        assert status == 200, catalogue
        with taskstream.connect(redis_server.url, retry_for=0, custom_types=catalogue) as publisher:
            ids = publisher.publish_batch(AGENT, task_id, [
                {"type": "ReviewRequested", "data": {"by": "ana"}},
                {"type": "ReviewRejected", "data": {}},
            ])
        assert [(e["id"], e["type"]) for e in history(typed, AGENT, task_id)] == list(zip(ids, ["ReviewRequested", "ReviewRejected"]))
        assert _listed_status(typed, task_id) == "failed"
    finally:
        typed.stop()


@pytest.mark.parametrize(
    "custom_types, message",
    [
        ({"types": {"review": {"category": "r", "payload": {}}}}, "custom_types.review: a type name"),
        ({"Review": {"category": "r", "terminal": "done"}}, "custom_types.Review.terminal"),
        ({"Review": {"category": "r", "terminal": "failed", "ephemeral": True}}, "terminal or ephemeral"),
        ("/nonexistent/event-types.json", "cannot read"),
    ],
)
def test_bad_custom_types_are_refused_at_connect(redis_server, custom_types, message):
    with pytest.raises(taskstream.PublishError) as failure:
        taskstream.connect(redis_server.url, custom_types=custom_types)
    assert failure.value.code == "invalid_custom_types" and message in str(failure.value)
