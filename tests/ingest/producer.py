"""A workflow producer that only knows Redis (the seed platform's broker):
it PUBLISHes CloudEvents JSON to `workflow.<task>` channels, as the seed's
workflows did, knowing nothing of taskstream.

usage: producer.py <redis port> <agent> <task> <steps>
"""
import json
import sys
import uuid

import redis

port, agent, task, steps = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
broker = redis.Redis(port=port)


def publish(type_, data):
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "urn:seed:workflow-runner",
        "type": "ai.agentarea.workflow." + type_,
        "subject": agent + "/" + task,
        "data": data,
    }
    broker.publish("workflow." + task, json.dumps(event))


publish("WorkflowStarted", {"goal": "bridge test"})
broker.publish("workflow." + task, "this is not JSON")
broker.publish("workflow." + task, json.dumps({"type": "WorkflowExploded", "agentId": agent, "taskId": task, "data": {}}))
for step in range(1, steps + 1):
    publish("WorkflowStepStarted", {"step": step})
publish("WorkflowCompleted", {"total_cost": 0.01})
