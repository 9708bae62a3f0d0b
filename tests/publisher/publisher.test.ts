import { describe, expect, it } from "bun:test"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { httpPublisher, PublishError, redisPublisher } from "../../src/publisher/index.ts"
import { history, taskPath } from "../support/api.ts"
import { uniqueTask, useHarness } from "../support/harness.ts"
import { eventually } from "../support/ports.ts"
import { eventFrames, openSse } from "../support/sse.ts"

describe("Publisher SDK", () => {
  const harness = useHarness("redis")

  it("publishes straight into Redis; a gateway client receives it live, and the task is indexed", async () => {
    const publisher = redisPublisher({ redis: harness().redis!.url })
    const task = { agentId: "agent-sdk", taskId: uniqueTask() }
    const stream = await openSse(`${harness().url}${taskPath(task.agentId, task.taskId)}/events/stream`)
    // Token chunks are live-only: publish once the gateway listens to the task's channel.
    await eventually(async () => {
      const [, count] = (await harness().redis!.client.call("PUBSUB", "NUMSUB", `ts:{${task.taskId}}:live`)) as [string, number]
      return count > 0
    })
    const id = await publisher.publish(task, "WorkflowLLMCallStarted", { model: "gpt-4o", estimated_cost: 0.01 })
    const chunk = await publisher.publish(task, "WorkflowLLMCallChunk", { chunk: "Hi", chunk_index: 0 })
    const ids = await publisher.publishBatch(task, [
      { type: "WorkflowStepStarted", data: { step: 1 } },
      { type: "WorkflowCompleted", data: { total_cost: 0.01 } }
    ])
    expect(chunk).toBeNull()
    await stream.ended
    expect(eventFrames(stream.frames).map((frame) => frame.id ?? null)).toEqual([id, null, ...ids])
    const { tasks } = await (await fetch(`${harness().url}/api/v1/tasks?agent=agent-sdk`)).json()
    expect(tasks[0]).toMatchObject({ taskId: task.taskId, status: "completed" })
    await publisher.close()
  })

  it("records the task's status in the index as the gateway does: paused until resumed", async () => {
    const publisher = redisPublisher({ redis: harness().redis!.url })
    const task = { agentId: "agent-sdk-status", taskId: uniqueTask() }
    const status = async () => (await (await fetch(`${harness().url}/api/v1/tasks?agent=${task.agentId}`)).json()).tasks[0]?.status
    await publisher.publishBatch(task, [{ type: "WorkflowStarted", data: {} }, { type: "WorkflowPaused", data: { reason: "review" } }])
    expect(await status()).toBe("paused")
    await publisher.publish(task, "WorkflowResumed", {})
    expect(await status()).toBe("running")
    await publisher.close()
  })

  it("stores an event once per idempotency key", async () => {
    const publisher = redisPublisher({ redis: harness().redis!.url })
    const task = { agentId: "agent-sdk", taskId: uniqueTask() }
    const first = await publisher.publish(task, "WorkflowStepStarted", { step: 1 }, { idempotencyKey: "step-1" })
    const retried = await publisher.publish(task, "WorkflowStepStarted", { step: 1 }, { idempotencyKey: "step-1" })
    expect(retried).toBe(first)
    expect((await history(harness().url, task.agentId, task.taskId)).body.events).toHaveLength(1)
    await publisher.close()
  })

  it("keeps the idempotency keys it generates for retries only for the retry window, and short", async () => {
    const redis = harness().redis!.client
    const publisher = redisPublisher({ redis: harness().redis!.url, retry: { maxElapsedMs: 10_000 } })
    const task = { agentId: "agent-sdk", taskId: uniqueTask() }
    await publisher.publishBatch(task, [
      { type: "WorkflowStepStarted", data: { step: 1 } },
      { type: "WorkflowStepStarted", data: { step: 2 } }
    ])
    const generated = await redis.keys(`ts:{${task.taskId}}:idem:*`)
    expect(generated).toHaveLength(2)
    for (const key of generated) {
      expect(key.length - `ts:{${task.taskId}}:idem:`.length).toBeLessThanOrEqual(16)
      const ttl = await redis.ttl(key)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(70)
    }
    // A key the caller chose keeps IDEMPOTENCY_S.
    await publisher.publish(task, "WorkflowStepStarted", { step: 3 }, { idempotencyKey: "mine" })
    expect(await redis.ttl(`ts:{${task.taskId}}:idem:mine`)).toBeGreaterThan(86_000)
    await publisher.close()
  })

  it("rejects bad events before sending, naming the field, and reports ended tasks", async () => {
    const publisher = redisPublisher({ redis: harness().redis!.url })
    const task = { agentId: "agent-sdk", taskId: uniqueTask() }
    const bad = publisher.publish(task, "WorkflowToolCallStarted", { tool_name: "t" } as never)
    await expect(bad).rejects.toMatchObject({ name: "PublishError", code: "invalid_event", field: "data.tool_call_id" })
    await publisher.publish(task, "WorkflowCancelled", { reason: "user" })
    const late = await publisher.publish(task, "WorkflowStepStarted", { step: 2 }).catch((error) => error)
    expect(late).toBeInstanceOf(PublishError)
    expect(late.code).toBe("task_ended")
    await publisher.close()
  })

  it("publishes over HTTP through a gateway with the same interface", async () => {
    const publisher = httpPublisher({ url: harness().url })
    const task = { agentId: "agent-http", taskId: uniqueTask() }
    const ids = await publisher.publishBatch(task, [
      { type: "WorkflowStarted", data: { goal: "g" }, time: new Date("2026-11-24T10:00:00Z") },
      { type: "WorkflowStepStarted", data: { step: 1 }, idempotencyKey: "s1" }
    ])
    expect(ids).toHaveLength(2)
    expect(await publisher.publish(task, "WorkflowStepStarted", { step: 1 }, { idempotencyKey: "s1" })).toBe(ids[1])
    const stored = await history(harness().url, task.agentId, task.taskId)
    expect(stored.body.events[0].time).toBe("2026-11-24T10:00:00.000Z")
    const other = await httpPublisher({ url: harness().url })
      .publish({ agentId: "intruder", taskId: task.taskId }, "WorkflowStepStarted", { step: 9 })
      .catch((error) => error)
    expect(other.code).toBe("task_agent_mismatch")
  })

  it("publishes custom types loaded from an EVENT_TYPES_FILE: checked here, declared to the script, ending the task", async () => {
    const dir = mkdtempSync(join(tmpdir(), "taskstream-sdk-types-"))
    const file = join(dir, "event-types.json")
    // Names only this test uses: the gateway's registry key does not know them, so only the declaration lets them pass.
    writeFileSync(file, JSON.stringify({
      types: {
        SdkReviewRequested: { category: "review", payload: { type: "object", required: ["by"], properties: { by: { type: "string" } } } },
        SdkReviewRejected: { category: "review", terminal: "failed", payload: { type: "object" } }
      }
    }))
    const task = { agentId: "agent-sdk-custom", taskId: uniqueTask() }
    const plain = redisPublisher({ redis: harness().redis!.url })
    await expect(plain.publish(task, "SdkReviewRequested", { by: "ana" })).rejects.toMatchObject({ code: "invalid_event", field: "type" })
    await plain.close()

    const publisher = redisPublisher({ redis: harness().redis!.url, eventTypesFile: file })
    // A built-in name keeps its typed payload: the string-typed form is for custom names only (checked by tsc).
    // @ts-expect-error WorkflowStepStarted requires `step`
    const typed = () => publisher.publish(task, "WorkflowStepStarted", { by: "ana" })
    expect(typeof typed).toBe("function")
    await expect(publisher.publish(task, "SdkReviewRequested", { by: 7 })).rejects.toMatchObject({ code: "invalid_event", field: "data.by" })
    const [requested, rejected] = await publisher.publishBatch(task, [
      { type: "SdkReviewRequested", data: { by: "ana" } },
      { type: "SdkReviewRejected", data: {} }
    ])
    const stored = (await history(harness().url, task.agentId, task.taskId)).body.events
    expect(stored.map((event: { id: string; type: string }) => [event.id, event.type])).toEqual([
      [requested, "SdkReviewRequested"],
      [rejected, "SdkReviewRejected"]
    ])
    const { tasks } = await (await fetch(`${harness().url}/api/v1/tasks?agent=${task.agentId}`)).json()
    expect(tasks[0]).toMatchObject({ taskId: task.taskId, status: "failed" })
    await expect(publisher.publish(task, "WorkflowStepStarted", { step: 1 })).rejects.toMatchObject({ code: "task_ended" })
    await publisher.close()
  })

  it("refuses an EVENT_TYPES_FILE it cannot read or with a bad entry, naming it", () => {
    const dir = mkdtempSync(join(tmpdir(), "taskstream-sdk-types-"))
    const file = join(dir, "bad.json")
    writeFileSync(file, JSON.stringify({ types: { WorkflowStarted: { category: "x", payload: { type: "object" } } } }))
    expect(() => httpPublisher({ url: harness().url, eventTypesFile: file })).toThrow(/types\.WorkflowStarted: .*built-in/)
    expect(() => httpPublisher({ url: harness().url, eventTypesFile: join(dir, "missing.json") })).toThrow(/eventTypesFile: cannot read/)
  })
})

describe("Publisher SDK over HTTP, against a rate-limited gateway", () => {
  const harness = useHarness("memory", { PUBLISH_RATE: "2" })

  it("reports a 429 as unavailable and, with retry, publishes every event once after the limit's wait", async () => {
    const task = { agentId: "agent-rate", taskId: uniqueTask() }
    const plain = httpPublisher({ url: harness().url })
    const once = await Promise.all([1, 2, 3, 4].map((step) => plain.publish(task, "WorkflowStepStarted", { step }).catch((error) => error)))
    expect(once.some((result) => result instanceof PublishError && result.code === "unavailable")).toBe(true)
    const retried = httpPublisher({ url: harness().url, retry: { maxElapsedMs: 10_000, minDelayMs: 200, maxDelayMs: 1000 } })
    const other = { agentId: "agent-rate", taskId: uniqueTask() }
    const ids = await Promise.all([1, 2, 3, 4, 5].map((step) => retried.publish(other, "WorkflowStepStarted", { step })))
    expect(new Set(ids).size).toBe(5)
    const stored = await history(harness().url, other.agentId, other.taskId)
    expect(stored.body.events.map((event: { data: { step: number } }) => event.data.step).sort()).toEqual([1, 2, 3, 4, 5])
  })
})
