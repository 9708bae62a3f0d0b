"""The synchronous publisher (SPEC §10.3): ``connect(url)`` → ``Publisher``."""
from __future__ import annotations

import functools
import time as clock
from datetime import datetime
from typing import Any, Iterator, Sequence

import redis

from . import _http
from ._redis import (
    Command,
    CommandCursor,
    APPEND,
    TASK_INDEX,
    Script,
    Settings,
    append_call,
    client_for,
    index_call,
    is_cluster,
    parse_url,
    publish_error,
    script_args,
)
from ._retry import Backoff, keyed
from .errors import PublishError
from .events import TaskEvents
from .registry import CustomTypesSource, Draft, check_ids, custom_types_of, draft, drafts_of_batch

DEFAULT_WORKER = "workflow"


class _RedisTransport:
    def __init__(self, client: Any, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.cluster = is_cluster(client)

    def send(self, agent_id: str, task_id: str, drafts: Sequence[Draft], batch: bool, keep_keys_s: int | None) -> list[str | None]:
        try:
            ids = self._run(APPEND, append_call(self.settings, self.cluster, agent_id, task_id, drafts, keep_keys_s))
        except redis.RedisError as error:
            raise publish_error(error, batch) from None
        try:  # best effort, like the TypeScript publisher: the event is stored
            self._run(TASK_INDEX, index_call(self.settings, agent_id, task_id, drafts, ids))
        except redis.RedisError:
            pass
        return [id or None for id in ids]

    def _run(self, script: Script, call: list[Any]) -> Any:
        try:
            return self.client.execute_command(*script_args(script, call, missing=False))
        except redis.exceptions.NoScriptError:
            return self.client.execute_command(*script_args(script, call, missing=True))

    def commands(self, agent_id: str, task_id: str, worker: str, block_ms: int | None, retry_for: float, closed: Any) -> Iterator[Command]:
        cursor = CommandCursor(self.settings, agent_id, task_id, worker, block_ms, retry_for)
        while not closed() and not cursor.done:
            try:
                read = cursor.on_reply(self.client.execute_command(*cursor.request()))
            except redis.RedisError as error:
                clock.sleep(cursor.on_error(error))
                continue
            for entry_id, found in read:
                ack = functools.partial(self._ack, cursor.ack(entry_id))
                if found is None:
                    ack()
                    continue
                command = Command(**found, _ack=ack)
                yield command
                if not command.acked:
                    command.ack()

    def _ack(self, request: tuple[Any, ...]) -> None:
        try:
            self.client.execute_command(*request)
        except redis.RedisError as error:
            raise publish_error(error, False) from None

    def close(self) -> None:
        self.client.close()


class _HttpTransport:
    def __init__(self, url: str, token: str | None) -> None:
        self.url = _http.check_url(url)
        self.token = token

    def send(self, agent_id: str, task_id: str, drafts: Sequence[Draft], batch: bool, keep_keys_s: int | None) -> list[str | None]:
        return _http.send(self.url, self.token, agent_id, task_id, drafts, batch)

    def commands(self, *_: Any) -> Iterator[Command]:
        raise PublishError("unsupported", "commands() reads the control stream in Redis: connect with a redis URL", "url")

    def close(self) -> None:
        pass


class Publisher:
    """Publishes a workflow's events, over Redis (the append script) or a gateway's HTTP API.

    Made by :func:`connect`; use it as a context manager or call :meth:`close`.
    """

    def __init__(self, transport: Any, retry_for: float) -> None:
        self._transport = transport
        self._retry_for = retry_for
        self._closed = False

    def publish(
        self,
        agent_id: str,
        task_id: str,
        type: str,
        data: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        time: str | datetime | None = None,
    ) -> str | None:
        """Append one event; its id, or None for an ephemeral one (an LLM token chunk)."""
        check_ids(agent_id, task_id)
        return self._deliver(agent_id, task_id, [draft(type, data, idempotency_key=idempotency_key, time=time)], False)[0]

    def publish_batch(self, agent_id: str, task_id: str, events: Sequence[dict[str, Any]]) -> list[str | None]:
        """Append several events ({"type", "data", "idempotency_key"?, "time"?}), all or nothing."""
        check_ids(agent_id, task_id)
        drafts = drafts_of_batch(events)
        return self._deliver(agent_id, task_id, drafts, True) if drafts else []

    def commands(self, agent_id: str, task_id: str, worker: str = DEFAULT_WORKER, block_ms: int | None = None) -> Iterator[Command]:
        """The task's control commands for this agent (Redis only), oldest unacknowledged first.

        ``worker`` names the consumer group: a restarted worker with the same name
        resumes after what it acknowledged. ``block_ms=None`` waits for commands until
        the loop breaks or the publisher closes; a number waits that long for the next
        command and then ends the iteration (``0``: only what is already queued).
        Asking for the next command acknowledges the previous one.
        """
        check_ids(agent_id, task_id)
        return self._transport.commands(agent_id, task_id, worker, block_ms, self._retry_for, lambda: self._closed)

    def task(self, agent_id: str, task_id: str) -> "Task":
        """One task's publisher, with a typed method per event type."""
        check_ids(agent_id, task_id)
        return Task(self, agent_id, task_id)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._transport.close()

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def _deliver(self, agent_id: str, task_id: str, drafts: list[Draft], batch: bool) -> list[str | None]:
        if self._closed:
            raise PublishError("closed", "the publisher is closed")
        if self._retry_for <= 0:
            return self._transport.send(agent_id, task_id, drafts, batch, None)
        drafts, keep_keys_s = keyed(drafts, self._retry_for)
        backoff = Backoff(self._retry_for)
        while True:
            try:
                return self._transport.send(agent_id, task_id, drafts, batch, keep_keys_s)
            except PublishError as error:
                delay = backoff.next_delay()
                if not error.retryable or delay is None:
                    raise
            clock.sleep(delay)


class Task(TaskEvents["str | None"]):
    """Publishes to one task: ``task.started(goal=…)``, ``task.llm_call_chunk(…)``, ``task.commands()``."""

    def __init__(self, publisher: Publisher, agent_id: str, task_id: str) -> None:
        self.publisher = publisher
        self.agent_id = agent_id
        self.task_id = task_id

    def publish(self, type: str, data: dict[str, Any] | None = None, **options: Any) -> str | None:
        return self.publisher.publish(self.agent_id, self.task_id, type, data, **options)

    def publish_batch(self, events: Sequence[dict[str, Any]]) -> list[str | None]:
        return self.publisher.publish_batch(self.agent_id, self.task_id, events)

    def commands(self, worker: str = DEFAULT_WORKER, block_ms: int | None = None) -> Iterator[Command]:
        return self.publisher.commands(self.agent_id, self.task_id, worker, block_ms)

    def _emit(self, type: str, data: dict[str, Any], idempotency_key: str | None, time: str | datetime | None) -> str | None:
        return self.publish(type, data, idempotency_key=idempotency_key, time=time)


def connect(
    url: str,
    token: str | None = None,
    *,
    retry_for: float = 30.0,
    prefix: str = "ts",
    history_max: int = 10000,
    retention_s: int = 86400,
    idempotency_s: int = 86400,
    task_index_max: int = 10000,
    inflight_ttl_s: int = 3600,
    task_idle_ttl_s: int = 86400,
    custom_types: CustomTypesSource = None,
) -> Publisher:
    """A publisher for a Redis URL (``redis://``, ``rediss://``, ``redis+cluster://h:p,…``,
    ``redis+sentinel://h:p,…/<master>``) or a gateway (``http(s)://…``, with a JWT ``token``).

    Publishes that cannot reach Redis or the gateway are retried for ``retry_for``
    seconds (0: not at all). The other settings are the gateway's (REDIS_PREFIX,
    HISTORY_MAX, RETENTION_S, IDEMPOTENCY_S, TASK_INDEX_MAX, INFLIGHT_TTL_S, TASK_IDLE_TTL_S) and apply over Redis.

    ``custom_types`` declares the gateway's custom event types (EVENT_TYPES_FILE: its path, its
    parsed JSON, or the body of the gateway's ``GET /api/v1/event-types``). Over Redis they are
    passed to the append script — required on a Redis Cluster, where the script cannot read the
    gateway's registry key — and a custom terminal type sets the task's status in the task list.
    Their payloads are not checked here (the gateway checks them over HTTP).
    """
    if url.startswith(("http://", "https://")):
        return Publisher(_HttpTransport(url, token), retry_for)
    if token is not None:
        raise PublishError("invalid_url", "token: a token is for a gateway URL (http(s)://); Redis URLs carry their own credentials", "token")
    settings = Settings(prefix, history_max, retention_s, idempotency_s, task_index_max, inflight_ttl_s, task_idle_ttl_s, custom_types_of(custom_types))
    return Publisher(_RedisTransport(client_for(parse_url(url), use_asyncio=False), settings), retry_for)
