"""Retries of a publish that could not reach Redis or the gateway: exponential
backoff within a time budget, every durable event carrying an idempotency key so
an attempt that was stored but whose answer was lost is not stored twice (the
TypeScript publisher's rules, src/publisher/index.ts)."""
from __future__ import annotations

import base64
import math
import secrets
import time
from typing import Sequence

from .registry import Draft, is_ephemeral

MIN_DELAY_S = 0.1
MAX_DELAY_S = 2.0
#: Generated keys only guard one call's retries: kept that long plus this margin, not IDEMPOTENCY_S.
KEY_MARGIN_S = 60


def generated_key() -> str:
    """96 random bits, base64url: as collision-proof as a UUID within one task, in 16 characters."""
    return base64.urlsafe_b64encode(secrets.token_bytes(12)).decode()


def keyed(drafts: Sequence[Draft], retry_for: float) -> tuple[list[Draft], int | None]:
    """The drafts with a generated key on each durable one without a key, and how long
    (seconds) the keys need keeping: None when the caller chose any key (their full lifetime)."""
    chosen = any(draft.idempotency_key is not None for draft in drafts)
    result = [
        draft if draft.idempotency_key is not None or is_ephemeral(draft.type) else draft.with_key(generated_key())
        for draft in drafts
    ]
    return result, None if chosen else math.ceil(retry_for) + KEY_MARGIN_S


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
