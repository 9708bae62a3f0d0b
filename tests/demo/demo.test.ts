/**
 * The demo agent in the gateway (POST /api/v1/demo) through the real log and
 * control stream: a full realistic run, a cancel, and the switch (DEMO); and
 * `npm run demo`, the same agent as its own process on Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { taskPath } from "../support/api.ts"
import { bunBin, type Gateway, startGateway } from "../support/gateway.ts"
import { useHarness } from "../support/harness.ts"
import { eventually } from "../support/ports.ts"
import { eventFrames, openSse } from "../support/sse.ts"

const startDemo = async (url: string) => {
  const response = await fetch(`${url}/api/v1/demo`, { method: "POST" })
  return { status: response.status, body: (await response.json()) as { agentId: string; taskId: string; code?: string } }
}

describe("demo agent in the gateway", () => {
  let gateway: Gateway
  beforeAll(async () => {
    gateway = await startGateway({ DEMO: "1", DEMO_SPEED: "20" })
  })
  afterAll(async () => {
    await gateway?.stop()
  })

  it("publishes a realistic run: steps, streamed LLM calls with costs, a failing tool call, a budget warning, completion", async () => {
    const { status, body } = await startDemo(gateway.url)
    expect(status).toBe(201)
    expect(body.agentId).toBe("demo-agent")
    const stream = await openSse(`${gateway.url}${taskPath(body.agentId, body.taskId)}/events/stream?format=envelope`)
    await stream.ended
    const events = eventFrames(stream.frames).map((frame) => JSON.parse(frame.data))
    const types = events.map((event) => event.type)
    expect(types[0]).toBe("WorkflowStarted")
    expect(types.at(-1)).toBe("WorkflowCompleted")
    for (const type of ["WorkflowStepStarted", "WorkflowLLMCallChunk", "WorkflowLLMCallCompleted", "WorkflowToolCallStarted", "WorkflowBudgetWarning"]) {
      expect(types).toContain(type)
    }
    expect(events.some((event) => event.type === "WorkflowToolCallCompleted" && event.data.success === false)).toBe(true)
    const costs = events.filter((event) => event.type === "WorkflowLLMCallCompleted").map((event) => event.data.total_cost)
    expect(costs).toEqual([...costs].sort((a, b) => a - b))
    expect(events.at(-1).data.total_cost).toBe(costs.at(-1))
  }, 30_000)

  it("obeys pause, resume and cancel from the control stream", async () => {
    const { body } = await startDemo(gateway.url)
    const base = `${gateway.url}${taskPath(body.agentId, body.taskId)}`
    const stream = await openSse(`${base}/events/stream`)
    await stream.waitFor((frames) => frames.some((frame) => frame.event === "WorkflowStepStarted"))
    expect((await fetch(`${base}/pause`, { method: "POST" })).status).toBe(202)
    await stream.waitFor((frames) => frames.some((frame) => frame.event === "WorkflowPaused"))
    await fetch(`${base}/resume`, { method: "POST" })
    await stream.waitFor((frames) => frames.some((frame) => frame.event === "WorkflowResumed"))
    await fetch(`${base}/cancel`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ reason: "enough" }) })
    await stream.ended
    const types = eventFrames(stream.frames).map((frame) => frame.event)
    const paused = types.indexOf("WorkflowPaused")
    expect(types.slice(paused + 1, paused + 2)).toEqual(["WorkflowResumed"])
    expect(types.at(-1)).toBe("WorkflowCancelled")
    expect(JSON.parse(eventFrames(stream.frames).at(-1)!.data).reason).toBe("enough")
  }, 30_000)

  it("is refused when DEMO is off", async () => {
    const off = await startGateway({ DEMO: "0" })
    try {
      const { status, body } = await startDemo(off.url)
      expect(status).toBe(404)
      expect(body.code).toBe("not_found")
      expect(await (await fetch(off.url)).text()).toContain('data-demo="off"')
    } finally {
      await off.stop()
    }
  }, 30_000)
})

describe("npm run demo (its own process, on Redis)", () => {
  const harness = useHarness("redis")

  it("names the gateway it was given in its hints, with its real port", async () => {
    const child = spawn(bunBin, [join(import.meta.dir, "..", "..", "src", "demo", "main.ts"), "--url", harness().url, "--speed", "1"], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, REDIS_URL: harness().redis!.url },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    const exited = new Promise((resolve) => child.once("exit", resolve))
    try {
      await eventually(() => stdout.includes("pause it:"), 10_000, "the hints")
    } finally {
      child.kill("SIGINT")
      await exited
    }
    expect(stdout).toContain(`npm run tail -- demo-agent `)
    expect(stdout).toContain(`--url ${harness().url}`)
    expect(stdout).toContain(`curl -X POST ${harness().url}/api/v1/agents/demo-agent/tasks/`)
    expect(stdout).not.toContain("no gateway answers")
  }, 30_000)
})
