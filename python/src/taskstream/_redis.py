"""The Redis side of the SDK, shared by the sync and the asyncio publisher:
URLs → clients, the append script's KEYS/ARGV and errors (SPEC §5, as
``src/log/appendScript.ts`` builds them), and control stream entries."""
from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio

from ._retry import Backoff
from .errors import PublishError
from .registry import CustomType, Draft, ending_of

log = logging.getLogger("taskstream")

@dataclass(frozen=True)
class Script:
    source: bytes
    sha: str


def _script(name: str) -> Script:
    source = resources.files(__package__).joinpath(name).read_bytes()
    return Script(source, hashlib.sha1(source).hexdigest())


#: The gateway's scripts, byte-identical to src/log/append.lua and src/log/task_index.lua (a test checks).
APPEND = _script("append.lua")
TASK_INDEX = _script("task_index.lua")


@dataclass(frozen=True)
class Settings:
    """What the append script needs besides the events; the gateway's defaults."""

    prefix: str = "ts"
    history_max: int = 10000
    retention_s: int = 86400
    idempotency_s: int = 86400
    task_index_max: int = 10000
    inflight_ttl_s: int = 3600
    #: TASK_IDLE_TTL_S: a task that has not ended expires this long after its last append (0: never).
    task_idle_ttl_s: int = 86400
    #: The custom types to declare to the append script (needed on a Cluster) and to fold into the task index.
    custom_types: Mapping[str, CustomType] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    kind: str  # "standalone" | "cluster" | "sentinel"
    url: str = ""
    nodes: tuple[tuple[str, int], ...] = ()
    master: str = ""
    username: str | None = None
    password: str | None = None
    tls: bool = False


_MULTI_NODE = re.compile(r"^(rediss?)\+(cluster|sentinel)://(?:([^:@/]*)(?::([^@/]*))?@)?([^@/]+?)(?:/([^/]*))?/?$")
_NODE = re.compile(r"^\s*(\[[0-9a-fA-F:]+\]|[^\s:,\[\]]+):(\d{1,5})\s*$")


def parse_url(url: str) -> Target:
    """A redis://, rediss://, redis+cluster://host:port,… or redis+sentinel://host:port,…/<master> URL."""
    multi = _MULTI_NODE.match(url)
    if multi:
        scheme, kind, user, password, node_list, master = multi.groups()
        nodes = []
        for part in node_list.split(","):
            node = _NODE.match(part)
            if node is None or not 1 <= int(node.group(2)) <= 65535:
                raise PublishError("invalid_url", f"url: {kind} nodes are host:port[,host:port…], not {part!r}", "url")
            nodes.append((node.group(1).strip("[]"), int(node.group(2))))
        if kind == "sentinel" and not master:
            raise PublishError("invalid_url", "url: a redis+sentinel:// URL ends with /<master-name>", "url")
        if kind == "cluster" and master:
            raise PublishError("invalid_url", "url: a redis+cluster:// URL has no path", "url")
        return Target(
            kind,
            nodes=tuple(nodes),
            master=unquote(master or ""),
            username=unquote(user) if user else None,
            password=unquote(password) if password else None,
            tls=scheme == "rediss",
        )
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss") and parts.hostname:
        return Target("standalone", url=url)
    raise PublishError(
        "invalid_url",
        f"url: expected redis://, rediss://, redis+cluster://, redis+sentinel:// or http(s)://, not {url!r}",
        "url",
    )


def client_for(target: Target, use_asyncio: bool) -> Any:
    """A redis-py client (sync or asyncio) for a target, answering str."""
    options: dict[str, Any] = {"decode_responses": True}
    auth = {key: value for key, value in (("username", target.username), ("password", target.password)) if value is not None}
    if target.kind == "standalone":
        return (redis.asyncio if use_asyncio else redis).Redis.from_url(target.url, **options)
    if target.kind == "cluster":
        if use_asyncio:
            from redis.asyncio.cluster import ClusterNode, RedisCluster
        else:
            from redis.cluster import ClusterNode, RedisCluster
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            ssl=target.tls,
            **auth,
            **options,
        )
    if use_asyncio:
        from redis.asyncio.sentinel import Sentinel
    else:
        from redis.sentinel import Sentinel
    sentinel = Sentinel(list(target.nodes), sentinel_kwargs={"ssl": target.tls}, ssl=target.tls, **options)
    return sentinel.master_for(target.master, ssl=target.tls, **auth, **options)


def is_cluster(client: Any) -> bool:
    from redis.asyncio.cluster import RedisCluster as AsyncCluster
    from redis.cluster import RedisCluster

    return isinstance(client, (RedisCluster, AsyncCluster))


def task_keys(prefix: str, task_id: str) -> dict[str, str]:
    base = f"{prefix}:{{{task_id}}}:"
    return {"log": base + "log", "live": base + "live", "inflight": base + "inflight", "ctl": base + "ctl", "idem": base + "idem:"}


def index_call(settings: Settings, agent_id: str, task_id: str, drafts: Sequence[Draft], ids: Sequence[str]) -> list[Any]:
    """numkeys, KEYS and ARGV of the task index script after an append (see its header): a
    separate call, as the index lives in another cluster slot. The status follows
    `indexUpdateOf` in src/events/state.ts."""
    last_id, status = "", ""
    for draft, id in zip(drafts, ids):
        if not id:
            continue
        last_id = id
        ends = ending_of(draft.type, settings.custom_types)
        set_by = ends or {"WorkflowPaused": "paused", "WorkflowResumed": "running"}.get(draft.type)
        status = set_by or status
    return [2, f"{settings.prefix}:tasks", f"{{{settings.prefix}:tasks}}:status", f"{agent_id}/{task_id}",
            int(time.time() * 1000), settings.task_index_max, last_id, status]


def append_call(
    settings: Settings, cluster: bool, agent_id: str, task_id: str, drafts: Sequence[Draft], keep_keys_s: int | None = None
) -> list[Any]:
    """numkeys, KEYS and ARGV of one append script call (see the script's header).
    `keep_keys_s` shortens how long the idempotency keys are kept (generated retry keys)."""
    keys = task_keys(settings.prefix, task_id)
    idempotency_keys: list[str] = []
    event_args: list[Any] = []
    for draft in drafts:
        key_index = 0
        if draft.idempotency_key is not None:
            idempotency_keys.append(keys["idem"] + draft.idempotency_key)
            key_index = len(idempotency_keys)
        event_args += [draft.type, draft.data_json, draft.time or "", key_index]
    all_keys = [keys["log"], keys["live"], keys["inflight"], *idempotency_keys]
    return [
        len(all_keys),
        *all_keys,
        agent_id,
        settings.history_max,
        settings.retention_s,
        settings.idempotency_s if keep_keys_s is None else min(keep_keys_s, settings.idempotency_s),
        # Sharded pub/sub on a Cluster: the message stays in the task's shard.
        "SPUBLISH" if cluster else "PUBLISH",
        settings.inflight_ttl_s,
        settings.task_idle_ttl_s,
        len(drafts),
        *event_args,
        # The script knows the built-in types; the declared custom ones follow the events
        # (all of them: the task's newest stored event may be of any, and may have ended it).
        *(part for name, custom in settings.custom_types.items() for part in (name, custom.kind)),
    ]


_EVENT_NUMBER = re.compile(r"^event (\d+)")


def publish_error(error: Exception, batch: bool) -> PublishError:
    """A Redis failure as a PublishError with the HTTP API's code."""
    if isinstance(error, PublishError):
        return error
    message = str(error)
    if isinstance(error, redis.ResponseError) and message.startswith("TS_"):
        code, _, text = message.partition(" ")
        number = _EVENT_NUMBER.match(text)
        where = f"[{int(number.group(1)) - 1}]." if batch and number else ""
        if code == "TS_AGENT_MISMATCH":
            return PublishError("task_agent_mismatch", text, "taskId")
        if code == "TS_TASK_ENDED":
            return PublishError("task_ended", text, "taskId")
        bad = {"TS_UNKNOWN_TYPE": "type", "TS_BAD_DATA": "data", "TS_BAD_TIME": "time"}.get(code)
        # Any other TS_ code is the script refusing the input, never an outage: not retried.
        return PublishError("invalid_event", text, where + bad if bad else None)
    return PublishError("unavailable", f"redis: {message or type(error).__name__}")


def script_args(script: Script, call: list[Any], missing: bool) -> list[Any]:
    """EVALSHA's arguments, or EVAL's once the server said NOSCRIPT."""
    return ["EVAL", script.source, *call] if missing else ["EVALSHA", script.sha, *call]


@dataclass
class Command:
    """A control command for the workflow (SPEC §4.2, §5); see docs/control.md for how to answer each."""

    id: str
    command_id: str
    command: str
    reason: str | None
    time: str
    source: str
    _ack: Callable[[], Any] = field(repr=False)
    acked: bool = False

    def ack(self) -> Any:
        """Mark it handled: a restarted worker will not get it again. Asking for the next command acks this one too.

        On an AsyncPublisher this returns an awaitable."""
        self.acked = True
        return self._ack()


COMMAND_KINDS = ("pause", "resume", "cancel")


def command_of_entry(agent_id: str, entry_id: str, fields: dict[str, str] | None) -> dict[str, Any] | None:
    """A control stream entry as Command fields, or None when it is not for this reader (ack and skip it)."""
    if not fields:  # trimmed away while it was pending
        return None
    # Entries name their agent: a task id reused by another agent is not ours to obey, nor is
    # an entry that names none (as the gateway's reader).
    if fields.get("agent_id") != agent_id:
        return None
    if fields.get("command") not in COMMAND_KINDS or "command_id" not in fields:
        log.warning("skipping control stream entry %s: not a taskstream command (%r)", entry_id, fields)
        return None
    return {
        "id": entry_id,
        "command_id": fields["command_id"],
        "command": fields["command"],
        "reason": fields.get("reason") or None,
        "time": fields.get("time", ""),
        "source": fields.get("source", ""),
    }


READ_COUNT = 100
#: Longest single blocking read while waiting without a limit: bounds how late close() is noticed.
BLOCK_SLICE_MS = 2000


class CommandCursor:
    """Where a command reader stands in the task's control stream, read through the
    consumer group `worker` (SPEC §5): first what this worker was given but did not
    acknowledge, then new commands. The sync and asyncio loops send its requests."""

    def __init__(self, settings: Settings, agent_id: str, task_id: str, worker: str, block_ms: int | None, retry_for: float) -> None:
        self.key = task_keys(settings.prefix, task_id)["ctl"]
        self.retry_for = retry_for
        self.outage: Backoff | None = None
        self.agent_id = agent_id
        self.worker = worker
        self.block_ms = block_ms
        self.group_ready = False
        self.position = "0"  # replaying this worker's unacknowledged entries after this id; ">" for new ones
        self.done = False

    def request(self) -> tuple[Any, ...]:
        if not self.group_ready:
            return ("XGROUP", "CREATE", self.key, self.worker, "0", "MKSTREAM")
        block: tuple[Any, ...] = ()
        if self.position == ">":
            wait = BLOCK_SLICE_MS if self.block_ms is None else self.block_ms
            block = ("BLOCK", wait) if wait > 0 else ()
        return ("XREADGROUP", "GROUP", self.worker, self.worker, "COUNT", READ_COUNT, *block, "STREAMS", self.key, self.position)

    def ack(self, entry_id: str) -> tuple[Any, ...]:
        return ("XACK", self.key, self.worker, entry_id)

    def on_reply(self, reply: Any) -> list[tuple[str, dict[str, Any] | None]]:
        """The entries read, each with its command's fields — None for one to acknowledge and skip."""
        self.outage = None
        if not self.group_ready:
            self.group_ready = True
            return []
        entries = entries_of(reply)
        if self.position != ">" and not entries:
            self.position = ">"
            return []
        read = []
        for entry_id, fields in entries:
            if self.position != ">":
                self.position = entry_id
            read.append((entry_id, command_of_entry(self.agent_id, entry_id, fields)))
        # A bounded wait that brought nothing ends the iteration.
        self.done = self.position == ">" and not entries and self.block_ms is not None
        return read

    def on_error(self, error: Exception) -> float:
        """Recover from what a reader can: the seconds to wait before the next request.
        Raises PublishError otherwise — also once Redis stayed away longer than `retry_for`."""
        message = str(error)
        if not self.group_ready and "BUSYGROUP" in message:
            self.group_ready = True
            return 0
        if "NOGROUP" in message:  # the stream expired (RETENTION_S) and took the group with it: start over
            self.group_ready, self.position = False, "0"
            return 0
        failure = publish_error(error, False)
        if failure.retryable:
            self.outage = self.outage or Backoff(self.retry_for)
            delay = self.outage.next_delay()
            if delay is not None:
                return delay
        raise failure


def entries_of(reply: Any) -> list[tuple[str, dict[str, str] | None]]:
    """XREADGROUP's reply (RESP2 list or RESP3 map) as [(id, fields)]."""
    if not reply:
        return []
    streams = list(reply.values()) if isinstance(reply, dict) else [stream[1] for stream in reply]
    entries = []
    for id, fields in streams[0] if streams else []:
        if isinstance(fields, (list, tuple)):
            fields = dict(zip(fields[::2], fields[1::2]))
        entries.append((id, fields or None))
    return entries
