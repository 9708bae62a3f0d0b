/**
 * The TaskIndex contract: recent tasks newest first, by agent, with their
 * status, bounded by TASK_INDEX_MAX — run in-process against the memory
 * layer and the Redis layer on a real redis-server and a real Redis Cluster.
 */
import { expect, it } from "bun:test"
import { createClient } from "../../src/log/redisTarget.ts"
import { describeEachLog, draft, run, step } from "../support/logContract.ts"
import { uniqueTask } from "../support/harness.ts"

describeEachLog("TaskIndex contract", ({ kind, target, log, index }) => {
  it("lists recently active tasks newest first, by agent, with their status, bounded by TASK_INDEX_MAX", async () => {
    const first = { agentId: "agent-list", taskId: uniqueTask("list") }
    const second = { agentId: "agent-list", taskId: uniqueTask("list") }
    const foreign = { agentId: "agent-else", taskId: uniqueTask("list") }
    await run(log().append(first, [step(1)]))
    await Bun.sleep(5)
    await run(log().append(foreign, [step(1)]))
    await Bun.sleep(5)
    await run(log().append(second, [step(1), draft("WorkflowFailed", { error: "x" })]))
    const mine = await run(index().tasks("agent-list", 10))
    expect(mine.map((summary) => [summary.taskId, summary.status])).toEqual([
      [second.taskId, "failed"],
      [first.taskId, "running"]
    ])
    const all = await run(index().tasks(undefined, 100))
    expect(all.length).toBeLessThanOrEqual(5)
    expect(all[0].taskId).toBe(second.taskId)
    expect(Number.isNaN(Date.parse(all[0].lastEventAt))).toBe(false)
  })

  it("keeps each indexed task's status: paused until resumed, ended by its terminal event, never put back by a replayed append", async () => {
    const task = { agentId: "agent-status", taskId: uniqueTask("status") }
    const statusNow = async () => (await run(index().tasks("agent-status", 5))).find((summary) => summary.taskId === task.taskId)?.status
    await run(log().append(task, [step(1)]))
    expect(await statusNow()).toBe("running")
    await run(log().append(task, [draft("WorkflowPaused", { reason: "user" }, "pause-1")]))
    expect(await statusNow()).toBe("paused")
    await run(log().append(task, [step(2), draft("WorkflowLLMCallChunk", { chunk: "x", chunk_index: 0 })]))
    expect(await statusNow()).toBe("paused")
    await run(log().append(task, [draft("WorkflowResumed", {})]))
    expect(await statusNow()).toBe("running")
    // A retry of the old pause returns its first id and must not pause the task again.
    await run(log().append(task, [draft("WorkflowPaused", { reason: "user" }, "pause-1")]))
    expect(await statusNow()).toBe("running")
    await run(log().append(task, [draft("WorkflowCancelled", { reason: "stop" })]))
    expect(await statusNow()).toBe("cancelled")
  })

  if (kind !== "memory") {
    it("keeps the status hash to the tasks the index keeps (task_index.lua trims both)", async () => {
      for (let i = 0; i < 8; i++) await run(log().append({ agentId: "agent-trim", taskId: uniqueTask("trim") }, [step(1)]))
      // The gateway sends index updates every INDEX_FLUSH_MS, and before a read of the index: read it once.
      await run(index().tasks(undefined, 1))
      const redis = createClient(target()!, { failFast: false })
      try {
        const indexed = await redis.zrange("ts:tasks", "0", "-1")
        expect(indexed).toHaveLength(5)
        expect((await redis.hkeys("{ts:tasks}:status")).sort()).toEqual([...indexed].sort())
      } finally {
        redis.disconnect()
      }
    })
  }
})
