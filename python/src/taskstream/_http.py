"""Publishing through a gateway's ingest route (SPEC §4.2) with the standard library."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Sequence
from urllib.parse import quote, urljoin, urlsplit

from .errors import PublishError
from .registry import Draft

TIMEOUT_S = 30


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PublishError("invalid_url", f"url: expected http(s)://<gateway>, not {url!r}", "url")
    return url


def send(base_url: str, token: str | None, agent_id: str, task_id: str, drafts: Sequence[Draft], batch: bool) -> list[str | None]:
    """POST the events; their ids, or a PublishError with the gateway's code and field."""
    path = f"/api/v1/agents/{quote(agent_id, safe='')}/tasks/{quote(task_id, safe='')}/events"
    bodies = [draft.body() for draft in drafts]
    headers = {"content-type": "application/json", "accept": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        urljoin(base_url, path),
        data=json.dumps(bodies if batch else bodies[0], separators=(",", ":"), ensure_ascii=False).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read())["ids"]
    except urllib.error.HTTPError as error:
        try:
            reply = json.loads(error.read())
        except ValueError:
            reply = {}
        code = reply.get("code") or ("unavailable" if error.code >= 500 else "rejected")
        raise PublishError(code, reply.get("message") or f"gateway answered {error.code}", reply.get("field")) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PublishError("unavailable", f"gateway unreachable: {reason}") from None
