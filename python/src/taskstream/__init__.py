"""taskstream for Python workflows (SPEC §10.3): publish events to a task's log —
over Redis with the gateway's append script, or over a gateway's HTTP API — and
receive the task's control commands (pause / resume / cancel).

    import taskstream

    with taskstream.connect("redis://localhost:6379") as publisher:
        task = publisher.task("agent-1", "task-9")
        task.started(goal="summarise the report")
        ...
"""
from ._redis import Command
from .aio import AsyncPublisher, AsyncTask, connect_async
from .errors import PublishError
from .events import EventType
from .publisher import Publisher, Task, connect
from .registry import EVENT_TYPES

__all__ = [
    "AsyncPublisher",
    "AsyncTask",
    "Command",
    "EVENT_TYPES",
    "EventType",
    "PublishError",
    "Publisher",
    "Task",
    "connect",
    "connect_async",
]
