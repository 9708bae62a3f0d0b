"""The one error the SDK raises for a publish, a command read or a bad connection URL."""
from __future__ import annotations

#: Codes that mean "try again later": the event may or may not be stored, so a retry
#: must carry the same idempotency key (the SDK's own retries do). The gateway answers
#: each of these with 429 or 503 and a Retry-After.
RETRYABLE_CODES = frozenset({
    "unavailable", "log_unavailable", "draining", "rate_limited", "too_many_connections", "internal",
    "replication_timeout", "auth_unavailable",
})


class PublishError(Exception):
    """A publish (or command read) failed.

    ``code`` is the HTTP API's error code (``invalid_event``, ``invalid_id``,
    ``task_ended``, ``task_agent_mismatch``, ``payload_too_large``, ``unauthorized``,
    ``forbidden``, ``rate_limited``, ``log_unavailable`` …) — the same over Redis,
    where the append script's ``TS_<CODE>`` errors map onto them — or
    ``unavailable`` when neither Redis nor the gateway could be reached.
    ``field`` names the bad input (``data.model``, ``[2].type``, ``taskId``) when known.
    """

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES

    def __repr__(self) -> str:
        return f"PublishError(code={self.code!r}, field={self.field!r}, message={self.message!r})"
