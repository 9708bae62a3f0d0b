/**
 * `GET /tasks` (SPEC §9.1) reads the task index — the sorted set of tasks and
 * the hash of their statuses — not the tasks' logs: one page costs two
 * commands however many tasks it lists (the dashboard polls it every 2 s).
 * Counted on the real redis-server with INFO commandstats.
 */
import { describe, expect, it } from "bun:test"
import { postEvents, step } from "../support/api.ts"
import { uniqueTask, useHarness } from "../support/harness.ts"

/** Calls per command since the server started, from INFO commandstats. */
const commandCalls = async (client: { call(...args: Array<string>): Promise<unknown> }) => {
  const calls = new Map<string, number>()
  for (const match of String(await client.call("INFO", "commandstats")).matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) {
    calls.set(match[1], Number(match[2]))
  }
  return calls
}

describe("GET /tasks on the Redis log", () => {
  const harness = useHarness("redis")

  it("costs one ZREVRANGE and one HMGET for a page of 40 tasks, and reads no task's log", async () => {
    const { url, redis } = harness()
    const agent = "agent-list-cost"
    const tasks = Array.from({ length: 40 }, () => uniqueTask("listed"))
    await Promise.all(tasks.map((task, i) => postEvents(url, agent, task, i % 2 === 0 ? step(1) : [step(1), { type: "WorkflowCompleted", data: {} }])))
    // The first list sends the index updates still pending; the one measured finds none.
    expect((await fetch(`${url}/api/v1/tasks?agent=${agent}&limit=50`)).status).toBe(200)

    const before = await commandCalls(redis!.client)
    const response = await fetch(`${url}/api/v1/tasks?agent=${agent}&limit=50`)
    const after = await commandCalls(redis!.client)

    const listed = (await response.json()).tasks as Array<{ taskId: string; status: string }>
    expect(listed.map((task) => task.taskId).sort()).toEqual([...tasks].sort())
    expect(listed.filter((task) => task.status === "completed")).toHaveLength(20)
    const sent = new Map<string, number>()
    for (const [name, calls] of after) {
      const delta = calls - (before.get(name) ?? 0)
      if (delta > 0 && name !== "info") sent.set(name, delta)
    }
    expect(Object.fromEntries(sent)).toEqual({ zrevrange: 1, hmget: 1 })
  }, 30_000)
})
