/** Two gateways in one process (embedders, tests) keep their own metrics, write queues and log levels: nothing is shared. */
import { afterAll, beforeAll, describe, expect, it, spyOn } from "bun:test"
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

  it("log each at its own LOG_LEVEL, from effects and from plain code", async () => {
    const lines: Array<string> = []
    const errors = spyOn(console, "error").mockImplementation((line: unknown) => void lines.push(String(line)))
    const apps: Array<TestApp> = []
    try {
      // Both run open: building the app warns so (an effect's line); a change from another site is refused (a plain line).
      const warns = await startApp({ logLevel: "warn" })
      apps.push(warns)
      const quiet = await startApp({ logLevel: "error" })
      apps.push(quiet)
      const crossSite = (app: TestApp, taskId: string) =>
        app.request(`${taskPath("agent-log", taskId)}/events`, {
          method: "POST",
          headers: { "content-type": "application/json", origin: "https://elsewhere.example" },
          body: JSON.stringify(step(1))
        })
      expect((await crossSite(quiet, "quiet-task")).status).toBe(403)
      expect((await crossSite(warns, "loud-task")).status).toBe(403)
      const parsed = lines.map((line) => JSON.parse(line) as { level: string; message: string; path?: string })
      expect(parsed.filter((line) => line.message.startsWith("AUTHENTICATION IS OFF")).map((line) => line.level)).toEqual(["warn"])
      const refused = parsed.filter((line) => line.message === "request refused")
      expect(refused.map((line) => line.path)).toEqual([`${taskPath("agent-log", "loud-task")}/events`])
    } finally {
      errors.mockRestore()
      for (const app of apps) await app.close()
    }
  })
})
