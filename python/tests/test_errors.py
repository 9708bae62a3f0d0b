"""Which errors the SDK's own retries try again: every 429/503 the gateway answers with Retry-After."""
import pytest

from taskstream import PublishError


@pytest.mark.parametrize("code", ["unavailable", "log_unavailable", "draining", "rate_limited", "replication_timeout", "auth_unavailable"])
def test_answers_that_say_try_again_are_retried(code):
    assert PublishError(code, "later").retryable


@pytest.mark.parametrize("code", ["invalid_event", "task_ended", "task_agent_mismatch", "forbidden", "unauthorized", "payload_too_large"])
def test_refusals_are_not_retried(code):
    assert not PublishError(code, "no").retryable
