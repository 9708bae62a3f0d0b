"""The event registry as the Python SDK sees it (SPEC §3), and the validation of
an event before it is sent: the same checks as the gateway's, so a bad event fails
in the workflow with the field named — also over Redis, where nothing else checks
the payload. ``registry.json`` is generated from ``src/events/registry.ts``.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from typing import Any, Mapping, Union

from .errors import PublishError

#: Every built-in type: {"category", "terminal" (how it ends a task: "completed" | "failed" |
#: "cancelled", or false), "ephemeral", "payload": <JSON Schema of data>}.
EVENT_TYPES: dict[str, dict[str, Any]] = json.loads(
    resources.files(__package__).joinpath("registry.json").read_text(encoding="utf-8")
)["types"]

ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
IDEMPOTENCY_KEY_MAX = 200
EVENT_FIELDS = frozenset({"type", "data", "time", "idempotency_key"})


ENDINGS = ("completed", "failed", "cancelled")
CUSTOM_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z0-9]{2,63}$")
CUSTOM_ENTRY_FIELDS = frozenset({"category", "terminal", "ephemeral", "payload"})


def is_ephemeral(type: str) -> bool:
    spec = EVENT_TYPES.get(type)
    return spec is not None and spec["ephemeral"]


@dataclass(frozen=True)
class CustomType:
    """A custom event type of the gateway's EVENT_TYPES_FILE (SPEC §10.2), as a publisher needs it."""

    ends: str | None = None  # how a terminal type ends its task
    ephemeral: bool = False

    @property
    def kind(self) -> str:
        """The append script's kind letter: t = terminal, e = ephemeral, d = durable."""
        return "t" if self.ends is not None else "e" if self.ephemeral else "d"


CustomTypesSource = Union[None, str, "os.PathLike[str]", Mapping[str, Any]]


def custom_types_of(source: CustomTypesSource) -> dict[str, CustomType]:
    """The custom types of an EVENT_TYPES_FILE — its path, its parsed JSON ({"types": {…}}) or
    just its "types" mapping — or the body of a gateway's GET /api/v1/event-types (same format).
    Raises PublishError("invalid_custom_types") naming the bad entry."""
    if source is None:
        return {}
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, encoding="utf-8") as file:
                source = json.load(file)
        except (OSError, ValueError) as error:
            raise PublishError("invalid_custom_types", f"custom_types: cannot read {str(source)!r}: {error}", "custom_types") from None
    if not isinstance(source, Mapping):
        raise PublishError("invalid_custom_types", "custom_types: expected a path or a mapping of type names", "custom_types")
    entries = source["types"] if isinstance(source.get("types"), Mapping) else source
    types: dict[str, CustomType] = {}
    for name, entry in entries.items():
        at = f"custom_types.{name}"
        if name in EVENT_TYPES:
            continue  # the built-ins, as GET /event-types lists them too
        if not isinstance(name, str) or not CUSTOM_TYPE_NAME.match(name):
            raise PublishError("invalid_custom_types", f"{at}: a type name matches [A-Z][A-Za-z0-9]{{2,63}}", "custom_types")
        if not isinstance(entry, Mapping):
            raise PublishError("invalid_custom_types", f"{at}: expected an object", "custom_types")
        terminal, ephemeral = entry.get("terminal"), entry.get("ephemeral", False)
        if terminal is not None and terminal is not False and terminal not in ENDINGS:
            raise PublishError("invalid_custom_types", f"{at}.terminal: expected one of {', '.join(ENDINGS)}", "custom_types")
        if not isinstance(ephemeral, bool):
            raise PublishError("invalid_custom_types", f"{at}.ephemeral: expected true or false", "custom_types")
        if terminal and ephemeral:
            raise PublishError("invalid_custom_types", f"{at}: a type is terminal or ephemeral, not both", "custom_types")
        types[name] = CustomType(terminal or None, ephemeral)
    return types


def ending_of(type: str, custom: Mapping[str, CustomType]) -> str | None:
    """How an event of this type ends its task, or None when it does not."""
    spec = EVENT_TYPES.get(type)
    if spec is not None:
        return spec["terminal"] or None
    found = custom.get(type)
    return found.ends if found is not None else None


@dataclass(frozen=True)
class Draft:
    """A validated event, ready for either transport."""

    type: str
    data_json: str
    time: str | None
    idempotency_key: str | None

    def with_key(self, key: str) -> "Draft":
        return Draft(self.type, self.data_json, self.time, key)

    def body(self) -> dict[str, Any]:
        """The event as the gateway's ingest route takes it."""
        body: dict[str, Any] = {"type": self.type, "data": json.loads(self.data_json)}
        if self.time is not None:
            body["time"] = self.time
        if self.idempotency_key is not None:
            body["idempotency_key"] = self.idempotency_key
        return body


def check_ids(agent_id: Any, task_id: Any) -> None:
    for field, value in (("agentId", agent_id), ("taskId", task_id)):
        if not isinstance(value, str) or not ID_PATTERN.match(value):
            raise PublishError("invalid_id", f"{field} must be 1-128 characters of [A-Za-z0-9._:-], not {value!r}", field)


def _at(prefix: str, field: str) -> str:
    return f"{prefix}.{field}" if prefix else field


def _time_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        utc = (value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if isinstance(value, str) and ISO_TIME.match(value):
        return value
    raise PublishError("invalid_event", f"{field}: expected an ISO-8601 time or a datetime, got {value!r}", field)


def _matches(schema: Mapping[str, Any], value: Any) -> bool:
    """Whether `value` fits the registry's JSON Schema subset: type, anyOf, minimum, maximum ({} is anything)."""
    if "anyOf" in schema:
        return any(_matches(member, value) for member in schema["anyOf"])
    kind = schema.get("type")
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "null":
        ok = value is None
    elif kind == "integer":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif kind == "object":
        ok = isinstance(value, Mapping)
    elif kind == "array":
        ok = isinstance(value, (list, tuple))
    else:
        ok = True
    if ok and isinstance(value, (int, float)) and not isinstance(value, bool):
        ok = value >= schema.get("minimum", -math.inf) and value <= schema.get("maximum", math.inf)
    return ok


def _describe(schema: Mapping[str, Any]) -> str:
    if "anyOf" in schema:
        return " or ".join(_describe(member) for member in schema["anyOf"])
    kind = schema.get("type", "any value")
    return f"{kind} >= {schema['minimum']}" if "minimum" in schema and kind == "integer" else kind


def _check_payload(type: str, data: Mapping[str, Any], prefix: str) -> None:
    schema = EVENT_TYPES[type]["payload"]
    for name in schema.get("required", []):
        if name not in data:
            field = _at(prefix, f"data.{name}")
            raise PublishError("invalid_event", f"{field}: {type} requires {name}", field)
    for name, field_schema in schema.get("properties", {}).items():
        if name in data and not _matches(field_schema, data[name]):
            field = _at(prefix, f"data.{name}")
            raise PublishError("invalid_event", f"{field}: expected {_describe(field_schema)}, got {data[name]!r}", field)


def draft(type: Any, data: Any, *, idempotency_key: Any = None, time: Any = None, prefix: str = "") -> Draft:
    """Validate one event; `prefix` locates it in a batch (`[3]`). Raises PublishError naming the field.

    A type the SDK does not know (a custom type of the gateway's EVENT_TYPES_FILE) is
    passed on unchecked: the gateway or the append script decides.
    """
    if not isinstance(type, str) or type == "":
        raise PublishError("invalid_event", f"{_at(prefix, 'type')}: expected an event type name", _at(prefix, "type"))
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise PublishError("invalid_event", f"{_at(prefix, 'data')}: expected an object (a dict)", _at(prefix, "data"))
    if type in EVENT_TYPES:
        _check_payload(type, data, prefix)
    try:
        data_json = json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise PublishError("invalid_event", f"{_at(prefix, 'data')}: not JSON-serialisable: {error}", _at(prefix, "data")) from None
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX
    ):
        field = _at(prefix, "idempotency_key")
        raise PublishError("invalid_event", f"{field}: expected 1-{IDEMPOTENCY_KEY_MAX} characters", field)
    return Draft(type, data_json, _time_text(time, _at(prefix, "time")), idempotency_key)


def drafts_of_batch(events: Any) -> list[Draft]:
    """Validate a batch: a list of {"type", "data", "idempotency_key"?, "time"?}."""
    if not isinstance(events, (list, tuple)):
        raise PublishError("invalid_event", "body: a batch is a list of events", "body")
    result = []
    for index, event in enumerate(events):
        prefix = f"[{index}]"
        if not isinstance(event, Mapping):
            raise PublishError("invalid_event", f"{prefix}: expected an event object", prefix)
        unknown = sorted(set(event) - EVENT_FIELDS)
        if unknown:
            raise PublishError("invalid_event", f"{prefix}.{unknown[0]}: unexpected field", f"{prefix}.{unknown[0]}")
        result.append(
            draft(event.get("type"), event.get("data"), idempotency_key=event.get("idempotency_key"), time=event.get("time"), prefix=prefix)
        )
    return result
