"""The asyncio publisher (SPEC §10.3): ``connect_async(url)`` → ``AsyncPublisher``,
the same API as :class:`taskstream.Publisher` with coroutines."""
from __future__ import annotations

import asyncio
import functools
from datetime import datetime
from typing import Any, AsyncIterator, Awaitable, Sequence

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
from .publisher import DEFAULT_WORKER
from .registry import CustomTypesSource, Draft, check_ids, custom_types_of, draft, drafts_of_batch


class _AsyncRedisTransport:
    def __init__(self, client: Any, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.cluster = is_cluster(client)

    async def send(self, agent_id: str, task_id: str, drafts: Sequence[Draft], batch: bool, keep_keys_s: int | None) -> list[str | None]:
        try:
            ids = await self._run(APPEND, append_call(self.settings, self.cluster, agent_id, task_id, drafts, keep_keys_s))
        except redis.RedisError as error:
            raise publish_error(error, batch) from None
        try:  # best effort, like the TypeScript publisher: the event is stored
            await self._run(TASK_INDEX, index_call(self.settings, agent_id, task_id, drafts, ids))
        except redis.RedisError:
            pass
        return [id or None for id in ids]

    async def _run(self, script: Script, call: list[Any]) -> Any:
        try:
            return await self.client.execute_command(*script_args(script, call, missing=False))
        except redis.exceptions.NoScriptError:
            return await self.client.execute_command(*script_args(script, call, missing=True))

    async def commands(self, agent_id: str, task_id: str, worker: str, block_ms: int | None, retry_for: float, closed: Any) -> AsyncIterator[Command]:
        cursor = CommandCursor(self.settings, agent_id, task_id, worker, block_ms, retry_for)
        while not closed() and not cursor.done:
            try:
                read = cursor.on_reply(await self.client.execute_command(*cursor.request()))
            except redis.RedisError as error:
                await asyncio.sleep(cursor.on_error(error))
                continue
            for entry_id, found in read:
                ack = functools.partial(self._ack, cursor.ack(entry_id))
                if found is None:
                    await ack()
                    continue
                command = Command(**found, _ack=ack)
                yield command
                if not command.acked:
                    await command.ack()

    async def _ack(self, request: tuple[Any, ...]) -> None:
        try:
            await self.client.execute_command(*request)
        except redis.RedisError as error:
            raise publish_error(error, False) from None

    async def close(self) -> None:
        await self.client.close()


class _AsyncHttpTransport:
    def __init__(self, url: str, token: str | None) -> None:
        self.url = _http.check_url(url)
        self.token = token

    async def send(self, agent_id: str, task_id: str, drafts: Sequence[Draft], batch: bool, keep_keys_s: int | None) -> list[str | None]:
        return await asyncio.to_thread(_http.send, self.url, self.token, agent_id, task_id, drafts, batch)

    def commands(self, *_: Any) -> AsyncIterator[Command]:
        raise PublishError("unsupported", "commands() reads the control stream in Redis: connect with a redis URL", "url")

    async def close(self) -> None:
        pass


class AsyncPublisher:
    """:class:`taskstream.Publisher` for asyncio: ``await publish(…)``, ``async for command in commands(…)``,
    ``async with``."""

    def __init__(self, transport: Any, retry_for: float) -> None:
        self._transport = transport
        self._retry_for = retry_for
        self._closed = False

    async def publish(
        self,
        agent_id: str,
        task_id: str,
        type: str,
        data: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        time: str | datetime | None = None,
    ) -> str | None:
        check_ids(agent_id, task_id)
        return (await self._deliver(agent_id, task_id, [draft(type, data, idempotency_key=idempotency_key, time=time)], False))[0]

    async def publish_batch(self, agent_id: str, task_id: str, events: Sequence[dict[str, Any]]) -> list[str | None]:
        check_ids(agent_id, task_id)
        drafts = drafts_of_batch(events)
        return await self._deliver(agent_id, task_id, drafts, True) if drafts else []

    def commands(self, agent_id: str, task_id: str, worker: str = DEFAULT_WORKER, block_ms: int | None = None) -> AsyncIterator[Command]:
        check_ids(agent_id, task_id)
        return self._transport.commands(agent_id, task_id, worker, block_ms, self._retry_for, lambda: self._closed)

    def task(self, agent_id: str, task_id: str) -> "AsyncTask":
        check_ids(agent_id, task_id)
        return AsyncTask(self, agent_id, task_id)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._transport.close()

    async def __aenter__(self) -> "AsyncPublisher":
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.close()

    async def _deliver(self, agent_id: str, task_id: str, drafts: list[Draft], batch: bool) -> list[str | None]:
        if self._closed:
            raise PublishError("closed", "the publisher is closed")
        if self._retry_for <= 0:
            return await self._transport.send(agent_id, task_id, drafts, batch, None)
        drafts, keep_keys_s = keyed(drafts, self._retry_for)
        backoff = Backoff(self._retry_for)
        while True:
            try:
                return await self._transport.send(agent_id, task_id, drafts, batch, keep_keys_s)
            except PublishError as error:
                delay = backoff.next_delay()
                if not error.retryable or delay is None:
                    raise
            await asyncio.sleep(delay)


class AsyncTask(TaskEvents["Awaitable[str | None]"]):
    """One task's AsyncPublisher: ``await task.started(goal=…)``, ``async for command in task.commands()``."""

    def __init__(self, publisher: AsyncPublisher, agent_id: str, task_id: str) -> None:
        self.publisher = publisher
        self.agent_id = agent_id
        self.task_id = task_id

    def publish(self, type: str, data: dict[str, Any] | None = None, **options: Any) -> Awaitable[str | None]:
        return self.publisher.publish(self.agent_id, self.task_id, type, data, **options)

    def publish_batch(self, events: Sequence[dict[str, Any]]) -> Awaitable[list[str | None]]:
        return self.publisher.publish_batch(self.agent_id, self.task_id, events)

    def commands(self, worker: str = DEFAULT_WORKER, block_ms: int | None = None) -> AsyncIterator[Command]:
        return self.publisher.commands(self.agent_id, self.task_id, worker, block_ms)

    def _emit(self, type: str, data: dict[str, Any], idempotency_key: str | None, time: str | datetime | None) -> Awaitable[str | None]:
        return self.publish(type, data, idempotency_key=idempotency_key, time=time)


async def connect_async(
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
) -> AsyncPublisher:
    """:func:`taskstream.connect` for asyncio (``publisher = await connect_async(url)``)."""
    if url.startswith(("http://", "https://")):
        return AsyncPublisher(_AsyncHttpTransport(url, token), retry_for)
    if token is not None:
        raise PublishError("invalid_url", "token: a token is for a gateway URL (http(s)://); Redis URLs carry their own credentials", "token")
    settings = Settings(prefix, history_max, retention_s, idempotency_s, task_index_max, inflight_ttl_s, task_idle_ttl_s, custom_types_of(custom_types))
    return AsyncPublisher(_AsyncRedisTransport(client_for(parse_url(url), use_asyncio=True), settings), retry_for)
