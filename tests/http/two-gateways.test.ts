/** Two gateways in one process (embedders, tests) keep their own metrics and write queues: nothing is shared. */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { step, taskPath } from "../support/api.ts"
import { startApp, type TestApp } from "../support/app.ts"
import { uniqueTask } from "../support/harness.ts"

const series = async (app: TestApp, name: string): Promise<number> => {
  const text = await (await app.request("/metrics")).text()
  const line = text.split("\n").find((row) => row.startsWith(`${name} `))
  return line === undefined ? NaN : Number(line.slice(name.length + 1))
}

describe("two gateways in one process", () => {
  let first: TestApp
  let second: TestApp
  beforeAll(async () => {
    first = await startApp()
    second = await startApp()
  })
  afterAll(async () => {
    await first.close()
    await second.close()
  })

  it("count their own appends, and write through their own queues", async () => {
    const task = uniqueTask("two")
    const posted = await first.request(`${taskPath("agent-two", task)}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([step(1), step(2), step(3)])
    })
    expect(posted.status).toBe(201)
    expect(await series(first, "taskstream_events_appended_total")).toBe(3)
    expect(await series(second, "taskstream_events_appended_total")).toBe(0)
    expect(first.deps.connections.writes).not.toBe(second.deps.connections.writes)
    expect(first.deps.metrics).not.toBe(second.deps.metrics)
  })
})
