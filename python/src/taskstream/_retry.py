"""Retries of a publish that could not reach Redis or the gateway: exponential
backoff within a time budget, every durable event carrying an idempotency key so
an attempt that was stored but whose answer was lost is not stored twice."""
from __future__ import annotations

import time
import uuid
from typing import Sequence

from .registry import Draft, is_ephemeral

MIN_DELAY_S = 0.1
MAX_DELAY_S = 2.0


def keyed(drafts: Sequence[Draft]) -> list[Draft]:
    return [
        draft if draft.idempotency_key is not None or is_ephemeral(draft.type) else draft.with_key(str(uuid.uuid4()))
        for draft in drafts
    ]


class Backoff:
    """The waits between attempts; None once the next wait would end past the budget."""

    def __init__(self, budget_s: float) -> None:
        self._deadline = time.monotonic() + budget_s
        self._delay = MIN_DELAY_S

    def next_delay(self) -> float | None:
        delay = self._delay
        if time.monotonic() + delay > self._deadline:
            return None
        self._delay = min(delay * 2, MAX_DELAY_S)
        return delay
