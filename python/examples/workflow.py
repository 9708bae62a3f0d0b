"""A Python workflow on taskstream: it publishes its events, streams an LLM
answer token by token, and obeys pause / resume / cancel from any client.

    REDIS_URL=redis://localhost:6379 TASK_ID=demo-1 python workflow.py
    curl -X POST localhost:8080/api/v1/agents/agent-1/tasks/demo-1/pause    # then /resume or /cancel
"""
import os
import time
import uuid

import taskstream

MODEL = "gpt-4o"


class Cancelled(Exception):
    pass


def obey_commands(task: taskstream.Task) -> None:
    """Call between two units of work: returns at once when no command is queued,
    blocks while paused until resume, raises Cancelled on cancel."""
    paused = False
    while True:
        # The oldest command not yet acknowledged: waits for one only while paused.
        command = next(iter(task.commands(block_ms=None if paused else 0)), None)
        if command is None:
            return
        command.ack()  # handled: a restarted worker will not get it again
        if command.command == "cancel":
            raise Cancelled(command.reason or "cancelled")
        if command.command == "pause" and not paused:
            task.paused(reason=command.reason)
            paused = True
        elif command.command == "resume" and paused:
            task.resumed(reason=command.reason)
            paused = False


def llm_tokens(prompt: str):
    """Stands in for a streaming LLM call."""
    for word in f"Here is a short answer to '{prompt}', written word by word.".split(" "):
        time.sleep(float(os.environ.get("TOKEN_DELAY_S", "0.05")))
        yield word + " "


def answer(task: taskstream.Task, prompt: str) -> str:
    call_id = str(uuid.uuid4())  # ties the chunks and the completion to this call
    task.llm_call_started(model=MODEL, call_id=call_id)
    text = ""
    for index, token in enumerate(llm_tokens(prompt)):
        task.llm_call_chunk(chunk=token, chunk_index=index, call_id=call_id)  # live only: returns None
        text += token
        obey_commands(task)  # a pause can come mid-answer
    task.llm_call_completed(model=MODEL, call_id=call_id, content=text, cost=0.002, total_cost=0.002)
    return text


def run(task: taskstream.Task, goal: str) -> None:
    task.started(goal=goal, budget_limit=1.0)
    try:
        obey_commands(task)
        task.step_started(step=1, name="research")
        task.tool_call_started(tool_name="search", tool_call_id="search-1", arguments={"q": goal})
        task.tool_call_completed(tool_name="search", tool_call_id="search-1", success=True, result=["…"], execution_time_ms=120)
        task.step_completed(step=1, name="research")
        obey_commands(task)
        task.step_started(step=2, name="write")
        text = answer(task, goal)
        task.step_completed(step=2, name="write")
        task.completed(final_response=text, total_cost=0.002)
    except Cancelled as cancelled:
        task.cancelled(reason=str(cancelled))
    except Exception as error:
        task.failed(error=str(error), error_type=type(error).__name__)
        raise


if __name__ == "__main__":
    with taskstream.connect(os.environ.get("REDIS_URL", "redis://localhost:6379")) as publisher:
        task = publisher.task(os.environ.get("AGENT_ID", "agent-1"), os.environ.get("TASK_ID", str(uuid.uuid4())))
        run(task, os.environ.get("GOAL", "summarise the quarterly report"))
