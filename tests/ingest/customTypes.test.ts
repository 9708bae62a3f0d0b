/**
 * Custom event types from EVENT_TYPES_FILE (SPEC §10.2) on a gateway with a
 * real Redis: validated with errors naming the field, stored, filtered by
 * their new category, ending a stream when terminal, accepted by the append
 * script from any Redis client (and unknown ones refused), listed with a JSON
 * Schema that a real validator (ajv) applies. A bad file stops start-up
 * naming the entry. And a stored event of a type the registry does not know
 * breaks nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Ajv2020 } from "ajv/dist/2020.js"
import { postEvents, taskPath } from "../support/api.ts"
import { RUNTIMES, startGateway } from "../support/gateway.ts"
import { startHarness, uniqueTask, useHarness } from "../support/harness.ts"
import { openSse } from "../support/sse.ts"
import { eventsOf, openWs } from "../support/ws.ts"
import { APPEND_SCRIPT } from "../../src/log/appendScript.ts"

const AGENT = "agent-custom"
// Inside the repository: Deno's `deno task start` may read only the working directory.
const dir = mkdtempSync(join(import.meta.dir, ".types-"))
const writeTypes = (name: string, content: unknown) => {
  const path = join(dir, name)
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content))
  return path
}

afterAll(() => rmSync(dir, { recursive: true, force: true }))

const TYPES = {
  types: {
    ApprovalRequested: {
      category: "approval",
      payload: {
        type: "object",
        required: ["approver", "amount"],
        properties: { approver: { type: "string" }, amount: { type: "number", minimum: 0 }, detail: { type: "object", properties: { reason: { type: "string" } } } }
      }
    },
    HandoffFinished: { category: "lifecycle", terminal: "completed", payload: { type: "object", properties: { to: { type: "string" } } } }
  }
}

for (const runtime of RUNTIMES) describe(`custom event types [${runtime}, redis log]`, () => {
  let h: Awaited<ReturnType<typeof startHarness>>
  const url = () => h.harness.url
  const redis = () => h.harness.redis!.client

  beforeAll(async () => {
    h = await startHarness("redis", { EVENT_TYPES_FILE: writeTypes("types.json", TYPES) }, runtime)
  })
  afterAll(async () => {
    await h.stop()
  })

  it("validates their payloads with errors naming the field", async () => {
    const taskId = uniqueTask()
    const bad = async (data: unknown) => (await postEvents(url(), AGENT, taskId, { type: "ApprovalRequested", data })).body
    expect(await bad({ approver: "ann", amount: "ten" })).toMatchObject({ code: "invalid_event", field: "data.amount" })
    expect(await bad({ amount: 1 })).toMatchObject({ code: "invalid_event", field: "data.approver" })
    expect(await bad({ approver: "ann", amount: 1, detail: { reason: 5 } })).toMatchObject({ field: "data.detail.reason" })
    const ok = await postEvents(url(), AGENT, taskId, { type: "ApprovalRequested", data: { approver: "ann", amount: 1, extra: true } })
    expect(ok.status).toBe(201)
  })

  it("filters by their new category, and a custom terminal type ends the stream and the task", async () => {
    const taskId = uniqueTask()
    const stream = await openSse(`${url()}${taskPath(AGENT, taskId)}/events/stream?types=approval`)
    const appended = await postEvents(url(), AGENT, taskId, [
      { type: "WorkflowStarted", data: {} },
      { type: "ApprovalRequested", data: { approver: "ann", amount: 3 } },
      { type: "WorkflowStepStarted", data: { step: 1 } },
      { type: "HandoffFinished", data: { to: "agent-b" } }
    ])
    expect(appended.status).toBe(201)
    await stream.ended
    const named = stream.frames.filter((frame) => frame.id !== undefined).map((frame) => frame.event)
    expect(named).toEqual(["ApprovalRequested", "HandoffFinished"])
    // The same over WebSocket: the filter by category, and the end with the custom terminal's ending.
    const ws = await openWs(url())
    ws.send({ op: "subscribe", sub: "s1", agentId: AGENT, taskId, types: ["approval"] })
    await ws.waitFor((frames) => frames.some((frame) => frame.op === "end"))
    expect(eventsOf(ws.frames, "s1").map((event) => event.type)).toEqual(["ApprovalRequested", "HandoffFinished"])
    expect(ws.frames.find((frame) => frame.op === "end")).toMatchObject({ sub: "s1", reason: "completed" })
    ws.close()
    const tasks = (await (await fetch(`${url()}/api/v1/tasks?agent=${AGENT}`)).json()) as { tasks: Array<{ taskId: string; status: string }> }
    expect(tasks.tasks.find((task) => task.taskId === taskId)?.status).toBe("completed")
    expect((await postEvents(url(), AGENT, taskId, { type: "WorkflowStepStarted", data: { step: 2 } })).body.code).toBe("task_ended")
  })

  it("are accepted by the append script from any Redis client, which refuses unknown types", async () => {
    expect(await redis().hgetall("ts:registry")).toMatchObject({ ApprovalRequested: "d", HandoffFinished: "t", WorkflowCompleted: "t", WorkflowLLMCallChunk: "e" })
    const taskId = uniqueTask()
    const evalAppend = (type: string) =>
      redis().eval(APPEND_SCRIPT, 3, `ts:{${taskId}}:log`, `ts:{${taskId}}:live`, `ts:{${taskId}}:inflight`, AGENT, 100, 60, 60, "PUBLISH", 3600, 0, 1, type, '{"approver":"bob","amount":2}', "", 0)
    const [id] = (await evalAppend("ApprovalRequested")) as Array<string>
    expect(id).toMatch(/^\d+-\d+$/)
    await expect(evalAppend("NeverDefined")).rejects.toThrow(/TS_UNKNOWN_TYPE/)
    const stream = await openSse(`${url()}${taskPath(AGENT, taskId)}/events/stream?format=envelope`)
    await stream.waitFor((frames) => frames.some((frame) => frame.id === id))
    stream.close()
  })

  it("are listed by GET /event-types with a JSON Schema per type that validates real payloads", async () => {
    const catalogue = (await (await fetch(`${url()}/api/v1/event-types`)).json()) as {
      types: Record<string, { category: string; terminal: string | false; ephemeral: boolean; payload: object }>
      categories: Array<string>
    }
    expect(Object.keys(catalogue.types)).toHaveLength(17)
    expect(catalogue.categories).toEqual(["lifecycle", "llm", "tool", "budget", "flow", "step", "approval"])
    expect(catalogue.types.HandoffFinished).toMatchObject({ category: "lifecycle", terminal: "completed", ephemeral: false })
    expect(catalogue.types.WorkflowFailed).toMatchObject({ category: "lifecycle", terminal: "failed", ephemeral: false })
    expect(catalogue.types.WorkflowLLMCallChunk).toMatchObject({ category: "llm", terminal: false, ephemeral: true })
    const ajv = new Ajv2020({ strict: false })
    const valid = (type: string, data: unknown) => ajv.validate(catalogue.types[type].payload, data)
    expect(valid("WorkflowLLMCallStarted", { model: "gpt-4o", estimated_cost: null, custom: 1 })).toBe(true)
    expect(valid("WorkflowLLMCallStarted", { estimated_cost: 1 })).toBe(false)
    expect(valid("WorkflowToolCallCompleted", { tool_name: "t", tool_call_id: "c", success: "yes" })).toBe(false)
    expect(valid("WorkflowStepStarted", { step: "s-1", name: "plan" })).toBe(true)
    expect(valid("WorkflowStarted", { max_iterations: 1.5 })).toBe(false)
    expect(valid("ApprovalRequested", { approver: "ann", amount: 2 })).toBe(true)
    expect(valid("ApprovalRequested", { approver: "ann", amount: -2 })).toBe(false)
  })

  it("a stored event of a type the registry does not know breaks neither the task list nor a stream", async () => {
    const taskId = uniqueTask("retired")
    await postEvents(url(), AGENT, taskId, { type: "WorkflowStarted", data: {} })
    // Written by a gateway whose EVENT_TYPES_FILE had a type this one does not.
    await redis().xadd(`ts:{${taskId}}:log`, "*", "type", "RetiredType", "agentId", AGENT, "time", "2026-11-24T10:00:00.000Z", "data", '{"x":1}')
    const list = await fetch(`${url()}/api/v1/tasks?agent=${AGENT}`)
    expect(list.status).toBe(200)
    expect(((await list.json()) as { tasks: Array<{ taskId: string; status: string }> }).tasks.find((task) => task.taskId === taskId)?.status).toBe("running")
    const stream = await openSse(`${url()}${taskPath(AGENT, taskId)}/events/stream`)
    await stream.waitFor((frames) => frames.some((frame) => frame.event === "RetiredType"))
    // The stream went live after it: a new event arrives.
    await postEvents(url(), AGENT, taskId, { type: "WorkflowCompleted", data: {} })
    await stream.ended
    expect(stream.frames.filter((frame) => frame.id !== undefined).map((frame) => frame.event)).toEqual(["WorkflowStarted", "RetiredType", "WorkflowCompleted"])
    expect(JSON.parse(stream.frames.find((frame) => frame.event === "RetiredType")!.data)).toEqual({ x: 1 })
  })
})

describe("a bad EVENT_TYPES_FILE stops start-up naming the entry", () => {
  const cases: ReadonlyArray<[string, unknown, RegExp]> = [
    ["a built-in redefined", { types: { WorkflowStarted: { category: "lifecycle", payload: { type: "object" } } } }, /types\.WorkflowStarted: WorkflowStarted is a built-in/],
    ["a bad name", { types: { approval: { category: "x", payload: { type: "object" } } } }, /types\.approval: a type name matches/],
    ["a bad category", { types: { ApprovalRequested: { category: "Has Space", payload: { type: "object" } } } }, /types\.ApprovalRequested\.category/],
    ["a bad terminal kind", { types: { ApprovalRequested: { category: "a", terminal: "done", payload: { type: "object" } } } }, /types\.ApprovalRequested\.terminal/],
    ["a payload that is not an object schema", { types: { ApprovalRequested: { category: "a", payload: { type: "string" } } } }, /types\.ApprovalRequested\.payload/],
    ["an unresolvable $ref", { types: { ApprovalRequested: { category: "a", payload: { type: "object", properties: { a: { $ref: "#/nowhere" } } } } } }, /types\.ApprovalRequested\.payload: Unresolved/],
    ["not JSON", "{", /EVENT_TYPES_FILE .*not JSON/]
  ]
  for (const [name, content, message] of cases) {
    it(name, async () => {
      const path = writeTypes(`${name.replace(/\W+/g, "-")}.json`, content)
      const error = await startGateway({ EVENT_TYPES_FILE: path }).then(
        async (gateway) => {
          await gateway.stop()
          return undefined
        },
        (failure: Error) => failure.message
      )
      expect(error).toMatch(message)
    })
  }
})

describe("custom event types [bun, redis cluster log]", () => {
  const h = useHarness("cluster", { EVENT_TYPES_FILE: writeTypes("cluster-types.json", TYPES) })

  it("are stored, and a custom terminal event ends the task, though the script cannot read the registry key there", async () => {
    const taskId = uniqueTask("cluster")
    const appended = await postEvents(h().url, AGENT, taskId, [
      { type: "ApprovalRequested", data: { approver: "ann", amount: 3 } },
      { type: "HandoffFinished", data: { to: "agent-b" } }
    ])
    expect(appended.status).toBe(201)
    expect((await postEvents(h().url, AGENT, taskId, { type: "ApprovalRequested", data: { approver: "bob", amount: 1 } })).body.code).toBe("task_ended")
    const stream = await openSse(`${h().url}${taskPath(AGENT, taskId)}/events/stream`)
    await stream.ended
    expect(stream.frames.filter((frame) => frame.id !== undefined).map((frame) => frame.event)).toEqual(["ApprovalRequested", "HandoffFinished"])
  })
})
