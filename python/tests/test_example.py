"""The README's complete workflow example (python/examples/workflow.py), run as a
real process against the real gateway while a client pauses, resumes and cancels it."""
from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, command, eventually, history

EXAMPLE = ROOT / "python" / "examples" / "workflow.py"
AGENT = "agent-1"


def start(redis_server, task_id: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": redis_server.url, "TASK_ID": task_id, "TOKEN_DELAY_S": "0.2", "PYTHONPATH": str(ROOT / "python" / "src")}
    return subprocess.Popen([sys.executable, str(EXAMPLE)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def types(gateway, task_id: str) -> list[str]:
    return [event["type"] for event in history(gateway, AGENT, task_id)]


def test_the_readme_shows_the_example_as_it_is():
    assert EXAMPLE.read_text() in (ROOT / "README.md").read_text()


def test_the_example_streams_its_answer_and_obeys_pause_and_resume(redis_server, gateway, task_id):
    workflow = start(redis_server, task_id)
    eventually(lambda: "WorkflowLLMCallStarted" in types(gateway, task_id), what="the LLM call")
    command(gateway, AGENT, task_id, "pause", "lunch")
    eventually(lambda: "WorkflowPaused" in types(gateway, task_id), what="WorkflowPaused")
    paused_at = len(types(gateway, task_id))
    command(gateway, AGENT, task_id, "resume")
    assert workflow.wait(30) == 0, workflow.stdout.read()
    events = history(gateway, AGENT, task_id)
    assert [e["type"] for e in events] == [
        "WorkflowStarted", "WorkflowStepStarted", "WorkflowToolCallStarted", "WorkflowToolCallCompleted",
        "WorkflowStepCompleted", "WorkflowStepStarted", "WorkflowLLMCallStarted", "WorkflowPaused",
        "WorkflowResumed", "WorkflowLLMCallCompleted", "WorkflowStepCompleted", "WorkflowCompleted",
    ]
    assert paused_at == 8 and events[7]["data"] == {"reason": "lunch"}
    call_id = events[6]["data"]["call_id"]
    assert events[9]["data"]["call_id"] == call_id
    assert events[9]["data"]["content"].startswith("Here is a short answer")


def test_the_example_reports_a_cancel_and_ends(redis_server, gateway, task_id):
    workflow = start(redis_server, task_id)
    eventually(lambda: "WorkflowLLMCallStarted" in types(gateway, task_id), what="the LLM call")
    command(gateway, AGENT, task_id, "cancel", "user changed their mind")
    assert workflow.wait(30) == 0, workflow.stdout.read()
    events = history(gateway, AGENT, task_id)
    assert events[-1]["type"] == "WorkflowCancelled"
    assert events[-1]["data"] == {"reason": "user changed their mind"}
    assert "WorkflowCompleted" not in [e["type"] for e in events]
