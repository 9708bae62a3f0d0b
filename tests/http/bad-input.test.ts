/**
 * Bad input (SPEC §3, §4): every malformed request is answered 4xx with a
 * JSON `{code, message}` naming the field — never 5xx — and nothing stored
 * changes. Validation is the app's, the same on every runtime and log: the
 * table runs through `app.request()` on the app with the memory log.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { step, taskPath } from "../support/api.ts"
import { startApp, type TestApp } from "../support/app.ts"
import { uniqueTask } from "../support/harness.ts"

const AGENT = "agent-bad"
const MAX_EVENT_BYTES = 2000
const MAX_BODY_BYTES = 50_000

interface Case {
  readonly name: string
  readonly method?: "GET" | "POST"
  /** Path below the task (`/events`, `/events/stream`) or an absolute path starting with `/api`. */
  readonly path?: string
  readonly body?: unknown
  readonly raw?: string
  readonly contentType?: string | null
  readonly headers?: Record<string, string>
  readonly status: number
  readonly code: string
  readonly field?: string
}

const ev = (type: string, data: unknown) => ({ type, data })
const llm = (data: Record<string, unknown>) => ev("WorkflowLLMCallStarted", data)

const cases: ReadonlyArray<Case> = [
  { name: "malformed JSON", raw: '{"type":', status: 400, code: "invalid_json", field: "body" },
  { name: "empty body", raw: "", status: 400, code: "invalid_json", field: "body" },
  { name: "JSON null", raw: "null", status: 400, code: "invalid_event", field: "body" },
  { name: "JSON number", raw: "42", status: 400, code: "invalid_event", field: "body" },
  { name: "JSON string", raw: '"WorkflowStarted"', status: 400, code: "invalid_event", field: "body" },
  { name: "empty batch", body: [], status: 400, code: "invalid_event", field: "body" },
  { name: "missing type", body: { data: {} }, status: 400, code: "invalid_event", field: "type" },
  { name: "type is a number", body: { type: 7, data: {} }, status: 400, code: "invalid_event", field: "type" },
  { name: "unknown type", body: ev("WorkflowExploded", {}), status: 400, code: "invalid_event", field: "type" },
  { name: "data is an array", body: ev("WorkflowStarted", [1]), status: 400, code: "invalid_event", field: "data" },
  { name: "data is a string", body: ev("WorkflowStarted", "x"), status: 400, code: "invalid_event", field: "data" },
  { name: "unexpected top-level field", body: { type: "WorkflowStarted", payload: {} }, status: 400, code: "invalid_event", field: "payload" },
  { name: "LLM call without model", body: llm({}), status: 400, code: "invalid_event", field: "data.model" },
  { name: "model is a number", body: llm({ model: 4 }), status: 400, code: "invalid_event", field: "data.model" },
  { name: "estimated_cost is a string", body: llm({ model: "m", estimated_cost: "1" }), status: 400, code: "invalid_event", field: "data.estimated_cost" },
  { name: "negative iteration", body: llm({ model: "m", iteration: -1 }), status: 400, code: "invalid_event", field: "data.iteration" },
  { name: "fractional message_count", body: llm({ model: "m", message_count: 1.5 }), status: 400, code: "invalid_event", field: "data.message_count" },
  { name: "chunk without chunk_index", body: ev("WorkflowLLMCallChunk", { chunk: "a" }), status: 400, code: "invalid_event", field: "data.chunk_index" },
  { name: "chunk is a number", body: ev("WorkflowLLMCallChunk", { chunk: 1, chunk_index: 0 }), status: 400, code: "invalid_event", field: "data.chunk" },
  { name: "is_final is a string", body: ev("WorkflowLLMCallChunk", { chunk: "a", chunk_index: 0, is_final: "yes" }), status: 400, code: "invalid_event", field: "data.is_final" },
  { name: "LLM completed without model", body: ev("WorkflowLLMCallCompleted", { cost: 1 }), status: 400, code: "invalid_event", field: "data.model" },
  { name: "tool start without tool_call_id", body: ev("WorkflowToolCallStarted", { tool_name: "t" }), status: 400, code: "invalid_event", field: "data.tool_call_id" },
  { name: "tool start without tool_name", body: ev("WorkflowToolCallStarted", { tool_call_id: "1" }), status: 400, code: "invalid_event", field: "data.tool_name" },
  { name: "tool success is a string", body: ev("WorkflowToolCallCompleted", { tool_name: "t", tool_call_id: "1", success: "yes" }), status: 400, code: "invalid_event", field: "data.success" },
  { name: "execution_time_ms is a string", body: ev("WorkflowToolCallCompleted", { tool_name: "t", tool_call_id: "1", success: true, execution_time_ms: "5ms" }), status: 400, code: "invalid_event", field: "data.execution_time_ms" },
  { name: "budget warning without limit", body: ev("WorkflowBudgetWarning", { cost: 1 }), status: 400, code: "invalid_event", field: "data.limit" },
  { name: "budget exceeded cost is a string", body: ev("WorkflowBudgetExceeded", { cost: "1", limit: 2 }), status: 400, code: "invalid_event", field: "data.cost" },
  { name: "failure without error", body: ev("WorkflowFailed", {}), status: 400, code: "invalid_event", field: "data.error" },
  { name: "step start without step", body: ev("WorkflowStepStarted", { name: "plan" }), status: 400, code: "invalid_event", field: "data.step" },
  { name: "step is a boolean", body: ev("WorkflowStepStarted", { step: true }), status: 400, code: "invalid_event", field: "data.step" },
  { name: "duration_ms is a string", body: ev("WorkflowStepCompleted", { step: 1, duration_ms: "1s" }), status: 400, code: "invalid_event", field: "data.duration_ms" },
  { name: "max_iterations is a string", body: ev("WorkflowStarted", { max_iterations: "10" }), status: 400, code: "invalid_event", field: "data.max_iterations" },
  { name: "total_cost is a string", body: ev("WorkflowCompleted", { total_cost: "x" }), status: 400, code: "invalid_event", field: "data.total_cost" },
  { name: "pause reason is a number", body: ev("WorkflowPaused", { reason: 5 }), status: 400, code: "invalid_event", field: "data.reason" },
  { name: "time is not ISO-8601", body: { ...step(1), time: "yesterday" }, status: 400, code: "invalid_event", field: "time" },
  { name: "empty idempotency_key", body: { ...step(1), idempotency_key: "" }, status: 400, code: "invalid_event", field: "idempotency_key" },
  { name: "idempotency_key too long", body: { ...step(1), idempotency_key: "k".repeat(300) }, status: 400, code: "invalid_event", field: "idempotency_key" },
  { name: "data over MAX_EVENT_BYTES", body: ev("WorkflowStarted", { goal: "g".repeat(MAX_EVENT_BYTES) }), status: 413, code: "payload_too_large", field: "data" },
  { name: "body over MAX_BODY_BYTES", body: Array.from({ length: 60 }, () => ev("WorkflowStarted", { goal: "g".repeat(1000) })), status: 413, code: "payload_too_large", field: "body" },
  { name: "text/plain content type", raw: JSON.stringify(step(1)), contentType: "text/plain", status: 415, code: "unsupported_media_type", field: "content-type" },
  { name: "no content type", raw: JSON.stringify(step(1)), contentType: null, status: 415, code: "unsupported_media_type", field: "content-type" },
  { name: "form content type", raw: "type=WorkflowStarted", contentType: "application/x-www-form-urlencoded", status: 415, code: "unsupported_media_type", field: "content-type" },
  { name: "batch with one bad element", body: [step(1), llm({ model: 1 }), step(2)], status: 400, code: "invalid_event", field: "[1].data.model" },
  { name: "batch with a terminal event before others", body: [ev("WorkflowCompleted", {}), step(9)], status: 409, code: "task_ended", field: "taskId" },
  { name: "batch over MAX_BATCH_EVENTS", body: Array.from({ length: 11 }, (_, i) => step(i)), status: 400, code: "invalid_event", field: "body" },
  { name: "agentId with odd characters", path: `/api/v1/agents/agent$1/tasks/t/events`, body: step(1), status: 400, code: "invalid_id", field: "agentId" },
  { name: "taskId over 128 characters", path: `/api/v1/agents/${AGENT}/tasks/${"t".repeat(129)}/events`, body: step(1), status: 400, code: "invalid_id", field: "taskId" },
  { name: "taskId with an encoded slash", path: `/api/v1/agents/${AGENT}/tasks/a%2Fb/events`, body: step(1), status: 400, code: "invalid_id", field: "taskId" },
  { name: "taskId with non-ASCII letters", path: `/api/v1/agents/${AGENT}/tasks/t%C3%A4sk/events`, body: step(1), status: 400, code: "invalid_id", field: "taskId" },
  { name: "taskId with a space", path: `/api/v1/agents/${AGENT}/tasks/a%20b/events`, body: step(1), status: 400, code: "invalid_id", field: "taskId" },
  { name: "publish to a task of another agent", path: "OTHER_AGENT", body: step(1), status: 409, code: "task_agent_mismatch", field: "taskId" },
  { name: "stream: unknown type in types", method: "GET", path: "/events/stream?types=llm,Nope", status: 400, code: "invalid_query", field: "types" },
  { name: "stream: format is xml", method: "GET", path: "/events/stream?format=xml", status: 400, code: "invalid_query", field: "format" },
  { name: "stream: bad Last-Event-ID header", method: "GET", path: "/events/stream", headers: { "last-event-id": "yesterday" }, status: 400, code: "invalid_query", field: "Last-Event-ID" },
  { name: "stream: bad last_event_id query", method: "GET", path: "/events/stream?last_event_id=12-x", status: 400, code: "invalid_query", field: "last_event_id" },
  { name: "stream: include_history=maybe", method: "GET", path: "/events/stream?include_history=maybe", status: 400, code: "invalid_query", field: "include_history" },
  { name: "stream: another agent's task", method: "GET", path: "OTHER_AGENT_STREAM", status: 404, code: "not_found" },
  { name: "history: limit=0", method: "GET", path: "/events?limit=0", status: 400, code: "invalid_query", field: "limit" },
  { name: "history: limit=abc", method: "GET", path: "/events?limit=abc", status: 400, code: "invalid_query", field: "limit" },
  { name: "history: bad after", method: "GET", path: "/events?after=-1", status: 400, code: "invalid_query", field: "after" },
  { name: "tasks: bad agent", method: "GET", path: "/api/v1/tasks?agent=a%2Fb", status: 400, code: "invalid_query", field: "agent" },
  { name: "tasks: limit too large", method: "GET", path: "/api/v1/tasks?limit=5000", status: 400, code: "invalid_query", field: "limit" },
  { name: "unknown route", method: "GET", path: "/api/v1/nope", status: 404, code: "not_found" }
]

describe("Bad input", () => {
  let gateway: TestApp
  beforeAll(async () => {
    gateway = await startApp({ maxEventBytes: MAX_EVENT_BYTES, maxBodyBytes: MAX_BODY_BYTES, maxBatchEvents: 10 })
  })
  afterAll(() => gateway.close())

  const json = async (path: string, init?: RequestInit) => {
    const response = await gateway.request(path, init)
    return { status: response.status, body: (await response.json().catch(() => undefined)) as any }
  }
  const post = (path: string, body: unknown) =>
    json(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  const events = async (agentId: string, taskId: string) => (await json(`${taskPath(agentId, taskId)}/events`)).body

  it(`answers each of ${cases.length} bad requests 4xx naming the field, and stores nothing`, async () => {
    expect(cases.length).toBeGreaterThanOrEqual(40)
    const task = uniqueTask("bad")
    const base = taskPath(AGENT, task)
    expect((await post(`${base}/events`, [step(1), step(2), step(3)])).status).toBe(201)
    const before = await events(AGENT, task)
    const otherTask = uniqueTask("owned")
    expect((await post(`${taskPath("agent-owner", otherTask)}/events`, step(1))).status).toBe(201)
    const tasksBefore = (await json("/api/v1/tasks?limit=1000")).body

    for (const c of cases) {
      const method = c.method ?? "POST"
      const path = c.path === "OTHER_AGENT"
        ? `${taskPath(AGENT, otherTask)}/events`
        : c.path === "OTHER_AGENT_STREAM"
        ? `${taskPath(AGENT, otherTask)}/events/stream`
        : c.path?.startsWith("/api")
        ? c.path
        : `${base}${c.path ?? "/events"}`
      const headers: Record<string, string> = { ...c.headers }
      if (method === "POST" && c.contentType !== null) headers["content-type"] = c.contentType ?? "application/json"
      const { status, body } = await json(path, {
        method,
        headers,
        ...(method === "POST" ? { body: c.raw ?? JSON.stringify(c.body) } : {})
      })
      expect({ name: c.name, status, code: body?.code, field: body?.field }).toEqual({ name: c.name, status: c.status, code: c.code, field: c.field })
      expect(typeof body?.message).toBe("string")
    }

    expect(await events(AGENT, task)).toEqual(before)
    expect((await events("agent-owner", otherTask)).events).toHaveLength(1)
    const tasksAfter = (await json("/api/v1/tasks?limit=1000")).body
    expect(tasksAfter.tasks.map((t: { taskId: string }) => t.taskId).sort()).toEqual(
      tasksBefore.tasks.map((t: { taskId: string }) => t.taskId).sort()
    )
  })

  it("refuses a body over MAX_BODY_BYTES by its Content-Length, or by counting a streamed body, and takes one just under it", async () => {
    const task = uniqueTask("size")
    const path = `${taskPath(AGENT, task)}/events`
    const sized = (body: string) => ({ "content-type": "application/json", "content-length": String(new TextEncoder().encode(body).byteLength) })
    const streamed = (body: string) =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          const bytes = new TextEncoder().encode(body)
          for (let at = 0; at < bytes.byteLength; at += 8192) controller.enqueue(bytes.subarray(at, at + 8192))
          controller.close()
        }
      })
    const over = JSON.stringify({ type: "WorkflowStarted", data: { goal: "g".repeat(MAX_BODY_BYTES) } })
    const under = JSON.stringify([step(1)]).padEnd(MAX_BODY_BYTES, " ")
    const refused = { status: 413, code: "payload_too_large", field: "body" }
    const answer = async (init: RequestInit) => {
      const { status, body } = await json(path, { method: "POST", ...init })
      return { status, code: body?.code, field: body?.field }
    }
    expect(await answer({ headers: sized(over), body: over })).toEqual(refused)
    expect(await answer({ headers: { "content-type": "application/json" }, body: streamed(over) })).toEqual(refused)
    expect((await answer({ headers: sized(under), body: under })).status).toBe(201)
    expect((await answer({ headers: { "content-type": "application/json" }, body: streamed(under) })).status).toBe(201)
    expect((await events(AGENT, task)).events).toHaveLength(2)
  })
})
