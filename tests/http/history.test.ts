import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { history, postEvents, step } from "../support/api.ts"
import { ALL_LOG_KINDS, describeEachLog, startHarness, uniqueTask } from "../support/harness.ts"
import { eventually } from "../support/ports.ts"

const AGENT = "agent-h"

describeEachLog("History and task list", {}, (h) => {
  it("pages through history with after/limit/next and filters by type", async () => {
    const task = uniqueTask()
    await postEvents(h().url, AGENT, task, [
      ...Array.from({ length: 5 }, (_, i) => step(i + 1)),
      { type: "WorkflowLLMCallStarted", data: { model: "m" } },
      step(6)
    ])
    const first = await history(h().url, AGENT, task, "?limit=3")
    expect(first.status).toBe(200)
    expect(first.body.events.map((e: any) => e.data.step)).toEqual([1, 2, 3])
    expect(first.body.next).toBe(first.body.events[2].id)
    const second = await history(h().url, AGENT, task, `?limit=3&after=${first.body.next}`)
    expect(second.body.events.map((e: any) => e.type)).toEqual(["WorkflowStepStarted", "WorkflowStepStarted", "WorkflowLLMCallStarted"])
    const last = await history(h().url, AGENT, task, `?limit=3&after=${second.body.next}`)
    expect(last.body.events.map((e: any) => e.data.step)).toEqual([6])
    expect(last.body.next).toBeNull()
    const llm = await history(h().url, AGENT, task, "?types=llm")
    expect(llm.body.events.map((e: any) => e.type)).toEqual(["WorkflowLLMCallStarted"])
    expect(llm.body.events[0]).toMatchObject({ agentId: AGENT, taskId: task, data: { model: "m" } })
  })

  it("answers an unknown task with an empty page and another agent's task with 404", async () => {
    expect((await history(h().url, AGENT, uniqueTask())).body).toEqual({ events: [], next: null })
    const task = uniqueTask()
    await postEvents(h().url, AGENT, task, step(1))
    expect((await history(h().url, "someone-else", task)).status).toBe(404)
  })

  it("lists recently active tasks with their status, filtered by agent", async () => {
    const agent = `agent-${uniqueTask("l")}`
    const running = uniqueTask()
    const done = uniqueTask()
    await postEvents(h().url, agent, running, step(1))
    await Bun.sleep(5)
    await postEvents(h().url, agent, done, [step(1), { type: "WorkflowCompleted", data: {} }])
    const response = await fetch(`${h().url}/api/v1/tasks?agent=${agent}`)
    const { tasks } = await response.json()
    expect(tasks.map((t: any) => [t.taskId, t.status])).toEqual([
      [done, "completed"],
      [running, "running"]
    ])
    expect(tasks[0].agentId).toBe(agent)
  })

  it("lists at once every task of concurrent publishes, with the status of each task's newest event", async () => {
    const agent = `agent-${uniqueTask("c")}`
    const tasks = Array.from({ length: 12 }, () => uniqueTask())
    const paused = tasks[0]
    await postEvents(h().url, agent, paused, step(1))
    // Answered together: their index updates go out coalesced, before any of the answers.
    await Promise.all([
      postEvents(h().url, agent, paused, { type: "WorkflowPaused", data: { reason: "user" } }),
      ...tasks.slice(1).map((task, i) => postEvents(h().url, agent, task, i % 2 === 0 ? step(1) : [step(1), { type: "WorkflowCompleted", data: {} }]))
    ])
    await postEvents(h().url, agent, paused, step(2))
    const response = await fetch(`${h().url}/api/v1/tasks?agent=${agent}&limit=50`)
    const listed = new Map((await response.json()).tasks.map((t: any) => [t.taskId, t.status]))
    expect(listed.size).toBe(tasks.length)
    expect(listed.get(paused)).toBe("paused")
    tasks.slice(1).forEach((task, i) => expect(listed.get(task)).toBe(i % 2 === 0 ? "running" : "completed"))
  })

  it("is live and ready", async () => {
    expect(await (await fetch(`${h().url}/healthz`)).json()).toEqual({ status: "ok" })
    const ready = await fetch(`${h().url}/readyz`)
    expect(ready.status).toBe(200)
  })
}, ALL_LOG_KINDS)

describe("Readiness follows Redis", () => {
  let env: Awaited<ReturnType<typeof startHarness>>
  beforeAll(async () => {
    env = await startHarness("redis", { REDIS_COMMAND_TIMEOUT_MS: "500" })
  })
  afterAll(() => env.stop())

  it("reports 503 from /readyz and ingest while Redis is down, and recovers when it returns", async () => {
    const { url, redis } = env.harness
    await redis!.kill()
    const notReady = await fetch(`${url}/readyz`)
    expect(notReady.status).toBe(503)
    expect(notReady.headers.get("retry-after")).toBe("1")
    const ingest = await postEvents(url, AGENT, uniqueTask(), step(1))
    expect(ingest.status).toBe(503)
    expect(ingest.body.code).toBe("log_unavailable")
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    await redis!.start()
    await eventually(async () => (await fetch(`${url}/readyz`)).status === 200, 15_000, "readyz after Redis restart")
    expect((await postEvents(url, AGENT, uniqueTask(), step(1))).status).toBe(201)
  }, 30_000)
})
