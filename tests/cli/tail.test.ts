/** `taskstream-tail` as a real process against a real gateway: one line per event, exit 0 after the end. */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { postEvents, step } from "../support/api.ts"
import { eventTypesFile } from "../support/eventTypes.ts"
import { bunBin, type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventually, freePort } from "../support/ports.ts"

const tail = (args: Array<string>) => {
  const child = spawn(bunBin, [join(import.meta.dir, "..", "..", "src", "cli", "tail.ts"), ...args], { stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (chunk) => (stdout += chunk))
  child.stderr.on("data", (chunk) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve))
  return { stdout: () => stdout, stderr: () => stderr, exited, kill: () => child.kill() }
}

describe("taskstream-tail", () => {
  let gateway: Gateway
  beforeAll(async () => {
    gateway = await startGateway({ DEMO: "0", EVENT_TYPES_FILE: eventTypesFile() })
  })
  afterAll(async () => {
    await gateway?.stop()
  })

  it("prints history and live events one line each, and exits 0 after the terminal event", async () => {
    const taskId = uniqueTask("tail")
    await postEvents(gateway.url, "agent-t", taskId, [{ type: "WorkflowStarted", data: { goal: "tail me" } }, step(1, { name: "first" })])
    const run = tail(["agent-t", taskId, "--url", gateway.url])
    try {
      await eventually(() => run.stdout().split("\n").length > 2, 10_000, "the history lines")
      await postEvents(gateway.url, "agent-t", taskId, [
        { type: "WorkflowToolCallCompleted", data: { tool_name: "search", tool_call_id: "c1", success: false, execution_time_ms: 12 } },
        { type: "WorkflowCompleted", data: { total_cost: 0.25 } }
      ])
      expect(await run.exited).toBe(0)
    } finally {
      run.kill()
    }
    const lines = run.stdout().trimEnd().split("\n")
    expect(lines.map((line) => line.split(/\s+/)[2])).toEqual(["WorkflowStarted", "WorkflowStepStarted", "WorkflowToolCallCompleted", "WorkflowCompleted"])
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} lifecycle +WorkflowStarted +goal="tail me"/)
    expect(lines[2]).toContain("tool=search success=false ms=12")
    expect(lines[3]).toContain("total_cost=$0.2500")
    // Not a terminal: no colour codes.
    expect(run.stdout()).not.toContain("\x1b[")
  }, 30_000)

  it("filters by --types and still ends on the terminal event", async () => {
    const taskId = uniqueTask("tailTypes")
    await postEvents(gateway.url, "agent-t", taskId, [step(1), { type: "WorkflowLLMCallStarted", data: { model: "m" } }, { type: "WorkflowFailed", data: { error: "boom" } }])
    const run = tail(["agent-t", taskId, "--url", gateway.url, "--types", "llm"])
    expect(await run.exited).toBe(0)
    expect(run.stdout().trimEnd().split("\n").map((line) => line.split(/\s+/)[2])).toEqual(["WorkflowLLMCallStarted", "WorkflowFailed"])
  }, 30_000)

  it("--chunks shows the text of a call in flight after a reload as one 'so far' line, then the live chunks", async () => {
    const taskId = uniqueTask("tailChunks")
    const chunk = (n: number) => ({ type: "WorkflowLLMCallChunk", data: { chunk: `w${n} `, chunk_index: n } })
    await postEvents(gateway.url, "agent-t", taskId, [{ type: "WorkflowLLMCallStarted", data: { model: "m" } }, chunk(0), chunk(1), chunk(2)])
    const run = tail(["agent-t", taskId, "--url", gateway.url, "--chunks"])
    try {
      await eventually(() => run.stdout().includes("so far"), 10_000, "the compacted line")
      await postEvents(gateway.url, "agent-t", taskId, [chunk(3), { type: "WorkflowLLMCallCompleted", data: { model: "m" } }, { type: "WorkflowCompleted", data: {} }])
      expect(await run.exited).toBe(0)
    } finally {
      run.kill()
    }
    const lines = run.stdout().trimEnd().split("\n")
    expect(lines.map((line) => line.split(/\s+/)[2])).toEqual([
      "WorkflowLLMCallStarted",
      "WorkflowLLMCallChunk",
      "WorkflowLLMCallChunk",
      "WorkflowLLMCallCompleted",
      "WorkflowCompleted"
    ])
    expect(lines[1]).toContain('so far "w0 w1 w2 "')
    expect(lines[2]).toContain('"w3 "')
    // The text was shown as it streamed: the completion does not repeat it.
    expect(lines[3]).not.toContain("content=")
  }, 30_000)

  it("shows a completion's stored content when no chunk was shown", async () => {
    const taskId = uniqueTask("tailContent")
    await postEvents(gateway.url, "agent-t", taskId, [
      { type: "WorkflowLLMCallStarted", data: { model: "m" } },
      { type: "WorkflowLLMCallChunk", data: { chunk: "the answer", chunk_index: 0 } },
      { type: "WorkflowLLMCallCompleted", data: { model: "m" } },
      { type: "WorkflowCompleted", data: {} }
    ])
    const run = tail(["agent-t", taskId, "--url", gateway.url])
    expect(await run.exited).toBe(0)
    const completed = run.stdout().split("\n").find((line) => line.includes("WorkflowLLMCallCompleted"))
    expect(completed).toContain('content="the answer"')
  }, 30_000)

  it("takes the gateway's custom types and categories in --types, and ends on a custom terminal type", async () => {
    const taskId = uniqueTask("tailCustom")
    await postEvents(gateway.url, "agent-t", taskId, [step(1), { type: "ReviewRequested", data: { by: "ana" } }])
    const run = tail(["agent-t", taskId, "--url", gateway.url, "--types", "review"])
    await eventually(() => run.stdout().includes("ReviewRequested"), 10_000, "the custom event's line")
    await postEvents(gateway.url, "agent-t", taskId, [step(2), { type: "ReviewRejected", data: {} }])
    expect(await run.exited).toBe(0)
    expect(run.stdout().trimEnd().split("\n").map((line) => line.split(/\s+/)[2])).toEqual(["ReviewRequested", "ReviewRejected"])
  }, 30_000)

  it("exits 1 naming the refusal when the task belongs to another agent", async () => {
    const taskId = uniqueTask("tailOther")
    await postEvents(gateway.url, "agent-owner", taskId, [step(1)])
    const run = tail(["agent-t", taskId, "--url", gateway.url])
    expect(await run.exited).toBe(1)
    expect(run.stderr().trim()).toBe(`not_found: task ${taskId} not found for agent agent-t`)
  }, 30_000)

  it("exits 2 with usage on bad arguments", async () => {
    const run = tail(["only-agent"])
    expect(await run.exited).toBe(2)
    expect(run.stderr()).toContain("usage: taskstream-tail")
    const badType = tail(["a", "t", "--url", gateway.url, "--types", "llm,nope"])
    expect(await badType.exited).toBe(2)
    expect(badType.stderr()).toContain("unknown event type or category 'nope'; the gateway knows the categories lifecycle,")
    const noScheme = tail(["a", "t", "--url", "127.0.0.1:8080"])
    expect(await noScheme.exited).toBe(2)
    expect(noScheme.stderr().trim()).toBe("--url must be the gateway's http:// or https:// URL, like http://localhost:8080; got '127.0.0.1:8080'")
    const badTask = tail(["a", "my task", "--url", gateway.url])
    expect(await badTask.exited).toBe(2)
    expect(badTask.stderr().trim()).toBe("taskId must be 1-128 letters, digits or . _ : - (no spaces or slashes); got 'my task'")
  }, 30_000)

  it("says it could not connect, not that a connection was lost, when the gateway never answered", async () => {
    const run = tail(["a", "t", "--url", `http://127.0.0.1:${await freePort()}`, "--connect-timeout", "1"])
    expect(await run.exited).toBe(2)
    expect(run.stderr()).toContain("could not connect to http://127.0.0.1:")
    expect(run.stderr()).not.toContain("connection lost")
  }, 30_000)
})
