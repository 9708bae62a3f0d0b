/**
 * The agent-UI protocols against a real gateway (SPEC §9), read by the real
 * libraries: @ag-ui/client's HttpAgent (its verifier runs on every event) and
 * the `ai` package's DefaultChatTransport + readUIMessageStream. Each runs a
 * history-only, a live-only, a mid-run join (between LLM calls) and a mid-call
 * join (an LLM call streaming: its text so far comes as one compacted chunk,
 * SPEC §8.2), on the memory and Redis logs.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { HttpAgent } from "@ag-ui/client"
import { DefaultChatTransport, readUIMessageStream, type UIMessage } from "ai"
import { postEvents, taskPath } from "../support/api.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { type Harness, LOG_KINDS, uniqueTask, useHarness } from "../support/harness.ts"
import { eventually } from "../support/ports.ts"
import { openSse } from "../support/sse.ts"
import { hsToken, SECRET } from "../support/tokens.ts"

const AGENT = "agent-ui"

/** A run in two halves: a first LLM answer and a tool call, then a second answer and the end. */
const FIRST = [
  { type: "WorkflowStarted", data: { goal: "answer", budget_limit: 1 } },
  { type: "WorkflowStepStarted", data: { step: 1, name: "research" } },
  { type: "WorkflowLLMCallStarted", data: { model: "m", call_id: "c1" } },
  { type: "WorkflowLLMCallChunk", data: { call_id: "c1", chunk: "The answer ", chunk_index: 0 } },
  { type: "WorkflowLLMCallChunk", data: { call_id: "c1", chunk: "is 42.", chunk_index: 1 } },
  { type: "WorkflowLLMCallCompleted", data: { model: "m", call_id: "c1", content: "The answer is 42.", total_cost: 0.1 } },
  { type: "WorkflowToolCallStarted", data: { tool_name: "search", tool_call_id: "t1", arguments: { q: "42" } } },
  { type: "WorkflowToolCallCompleted", data: { tool_name: "search", tool_call_id: "t1", success: true, result: { hits: 3 } } },
  { type: "WorkflowStepCompleted", data: { step: 1, name: "research" } }
]
const SECOND = [
  { type: "WorkflowLLMCallStarted", data: { model: "m", call_id: "c2" } },
  { type: "WorkflowLLMCallChunk", data: { call_id: "c2", chunk: "Do", chunk_index: 0 } },
  { type: "WorkflowLLMCallChunk", data: { call_id: "c2", chunk: "ne", chunk_index: 1 } },
  // A mid-call join comes in here: the call started and streamed "Done" so far.
  { type: "WorkflowLLMCallChunk", data: { call_id: "c2", chunk: ".", chunk_index: 2 } },
  { type: "WorkflowLLMCallCompleted", data: { model: "m", call_id: "c2", content: "Done.", total_cost: 0.2 } },
  { type: "WorkflowCompleted", data: { final_response: "42", total_cost: 0.2 } }
]
const STORED = [...FIRST, ...SECOND].filter((event) => event.type !== "WorkflowLLMCallChunk").length

const JOINS = ["history-only", "live-only", "mid-run", "mid-call"] as const
type Join = (typeof JOINS)[number]
/** Where a mid-call join comes in SECOND: after the second call's start and first chunks. */
const IN_CALL = 3

const publish = async (url: string, taskId: string, events: ReadonlyArray<unknown>) => {
  const response = await postEvents(url, AGENT, taskId, events)
  expect(response.status).toBe(201)
  return response.body.ids as Array<string | null>
}

/**
 * Publish the run around a join: everything before it, half before it, up to
 * an LLM call in flight (its start and first chunks) before it, or everything
 * after the client is following; the rest live.
 */
const playAround = async (url: string, taskId: string, join: Join, follow: () => { started: () => boolean }) => {
  const before = { "history-only": [...FIRST, ...SECOND], "live-only": [], "mid-run": FIRST, "mid-call": [...FIRST, ...SECOND.slice(0, IN_CALL)] }[join]
  if (before.length > 0) await publish(url, taskId, before)
  const client = follow()
  if (join === "live-only") await publish(url, taskId, FIRST.slice(0, 1))
  // Once the client has received the task's first event its live subscription is in place: no chunk can be missed.
  await eventually(client.started, 10_000, "the first event")
  const rest = [...FIRST, ...SECOND].slice(join === "live-only" ? 1 : before.length)
  if (rest.length > 0) await publish(url, taskId, rest)
}

const agUiSuite = (h: () => Harness) => {
  for (const join of JOINS) {
    it(`HttpAgent.runAgent() sees the whole run, ${join}: the exact text, the tool call with its arguments and its result`, async () => {
      const taskId = uniqueTask("agui")
      const agent = new HttpAgent({ url: `${h().url}${taskPath(AGENT, taskId)}/ag-ui` })
      let started = false
      let running: Promise<{ result: unknown }> | undefined
      await playAround(h().url, taskId, join, () => {
        running = agent.runAgent({ runId: "run-1" }, { onCustomEvent: () => void (started = true) })
        return { started: () => started }
      })
      const { result } = await running!
      expect(result).toBe("42")
      const messages = agent.messages as Array<any>
      expect(messages.map((message) => [message.id, message.role])).toEqual([["c1", "assistant"], [expect.any(String), "tool"], ["c2", "assistant"]])
      expect(messages[0].content).toBe("The answer is 42.")
      expect(messages[0].toolCalls).toEqual([{ id: "t1", type: "function", function: { name: "search", arguments: '{"q":"42"}' } }])
      expect(messages[1]).toMatchObject({ toolCallId: "t1", content: '{"hits":3}' })
      expect(messages[2].content).toBe("Done.")
      expect(agent.state).toMatchObject({ status: "completed", goal: "answer", llm_calls: 2, tool_calls: 1, events: STORED, cost: 0.2 })
    }, 20_000)
  }

  it("resumes after Last-Event-ID without sending any text twice", async () => {
    const taskId = uniqueTask("agui-resume")
    const ids = await publish(h().url, taskId, [...FIRST, ...SECOND])
    const firstAnswerEnd = ids[FIRST.findIndex((event) => event.type === "WorkflowLLMCallCompleted")]!
    const url = `${h().url}${taskPath(AGENT, taskId)}/ag-ui`
    // A first connection that got as far as the end of the first answer.
    const cut = await openSse(url)
    await cut.waitFor((frames) => frames.some((frame) => frame.id === firstAnswerEnd))
    cut.close()
    const before = cut.frames.slice(0, cut.frames.findIndex((frame) => frame.id === firstAnswerEnd) + 1)
      .filter((frame) => frame.data !== "")
      .map((frame) => JSON.parse(frame.data))
    const agent = new HttpAgent({ url, headers: { "last-event-id": firstAnswerEnd } })
    await agent.runAgent({ runId: "run-2" })
    const sentBefore = before.filter((event) => event.type === "TEXT_MESSAGE_CONTENT").map((event) => event.delta).join("")
    const messages = agent.messages as Array<any>
    expect(sentBefore).toBe("The answer is 42.")
    expect(messages.map((message) => message.content ?? "")).toEqual(["", '{"hits":3}', "Done."])
    expect(messages[0].toolCalls[0].id).toBe("t1")
    // The snapshot is the state at the resume point; the deltas bring it to the end.
    expect(agent.state).toMatchObject({ status: "completed", events: STORED })
  })

  it("echoes the POST body's threadId and runId, answers 204 after the end, and 400 for a bad body or a type filter", async () => {
    const taskId = uniqueTask("agui-io")
    const ids = await publish(h().url, taskId, [...FIRST, ...SECOND])
    const url = `${h().url}${taskPath(AGENT, taskId)}/ag-ui`
    const stream = await openSse(url, {})
    await stream.ended
    expect(JSON.parse(stream.frames.find((frame) => frame.data !== "")!.data)).toMatchObject({ type: "RUN_STARTED", threadId: taskId, runId: taskId })
    const posted = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ threadId: "th", runId: "r9", messages: [], tools: [], context: [], state: {}, forwardedProps: {} }) })
    expect(posted.headers.get("content-type")).toBe("text/event-stream; charset=utf-8")
    expect((await posted.text()).split("\n").find((line) => line.includes("RUN_STARTED"))).toBe('data: {"type":"RUN_STARTED","threadId":"th","runId":"r9"}')
    expect((await fetch(url, { headers: { "last-event-id": ids.at(-1)! } })).status).toBe(204)
    const bad = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ threadId: 7 }) })
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({ code: "invalid_run_input", field: "threadId" })
    const notJson = await fetch(url, { method: "POST", body: "{" })
    expect(await notJson.json()).toMatchObject({ code: "invalid_json", field: "body" })
    const filtered = await fetch(`${url}?types=llm`)
    expect(await filtered.json()).toMatchObject({ code: "invalid_query", field: "types" })
  })
}

/** Follow the UI message stream in the background; its latest message and its end. */
const followUi = (url: string) => {
  const transport = new DefaultChatTransport({ api: url, prepareReconnectToStreamRequest: () => ({ api: url }) })
  let latest: UIMessage | undefined
  const errors: Array<string> = []
  const done = (async () => {
    const stream = await transport.reconnectToStream({ chatId: "unused" })
    if (stream === null) return null
    for await (const message of readUIMessageStream({ stream, onError: (error) => void errors.push(String(error)) })) latest = message
    return latest
  })()
  return { latest: () => latest, done, errors }
}

const textOf = (message: UIMessage) => message.parts.flatMap((part) => (part.type === "text" ? [part.text] : [])).join("")

const uiSuite = (h: () => Harness) => {
  for (const join of JOINS) {
    it(`reconnectToStream + readUIMessageStream build the whole task as one message, ${join}`, async () => {
      const taskId = uniqueTask("ui")
      const url = `${h().url}${taskPath(AGENT, taskId)}/ui-message-stream${join === "history-only" ? "?replay=true" : ""}`
      let client: ReturnType<typeof followUi> | undefined
      await playAround(h().url, taskId, join, () => {
        client = followUi(url)
        return { started: () => client!.latest()?.parts.some((part) => part.type === "data-taskstream") === true }
      })
      const message = (await client!.done)!
      expect(client!.errors).toEqual([])
      expect(message.id).toBe(taskId)
      expect(textOf(message)).toBe("The answer is 42.Done.")
      expect(message.parts.filter((part) => part.type === "tool-search")).toEqual([
        expect.objectContaining({ toolCallId: "t1", state: "output-available", input: { q: "42" }, output: { hits: 3 } })
      ])
      expect(message.parts.filter((part) => part.type === "step-start")).toHaveLength(1)
    }, 20_000)
  }

  it("answers 204 for an ended task unless replay=true, with the protocol header, ending with [DONE]", async () => {
    const taskId = uniqueTask("ui-end")
    await publish(h().url, taskId, [...FIRST, ...SECOND])
    const url = `${h().url}${taskPath(AGENT, taskId)}/ui-message-stream`
    expect(await followUi(url).done).toBeNull()
    const replay = await fetch(`${url}?replay=true`)
    expect(replay.status).toBe(200)
    expect(replay.headers.get("x-vercel-ai-ui-message-stream")).toBe("v1")
    expect((await replay.text()).endsWith("data: [DONE]\n\n")).toBe(true)
    expect((await fetch(`${url}?replay=maybe`)).status).toBe(400)
  })
}

const stateSuite = (h: () => Harness) => {
  it("GET …/state folds the task, and GET /tasks shows it paused until it resumes", async () => {
    const taskId = uniqueTask("state")
    const base = `${h().url}${taskPath(AGENT, taskId)}`
    expect(await (await fetch(`${base}/state`)).json()).toMatchObject({ status: "running", events: 0, last_event_id: null })
    await publish(h().url, taskId, [...FIRST, { type: "WorkflowPaused", data: { reason: "review" } }])
    const statusInList = async () =>
      ((await (await fetch(`${h().url}/api/v1/tasks?agent=${AGENT}`)).json()).tasks as Array<any>).find((task) => task.taskId === taskId)?.status
    expect(await statusInList()).toBe("paused")
    const paused = await (await fetch(`${base}/state`)).json()
    expect(paused).toMatchObject({ status: "paused", goal: "answer", step: { step: 1, name: "research" }, cost: 0.1, budget_limit: 1, llm_calls: 1, tool_calls: 1, events: 8 })
    const ids = await publish(h().url, taskId, [{ type: "WorkflowResumed", data: {} }, { type: "WorkflowBudgetWarning", data: { cost: 0.9, limit: 1, usage_percentage: 90 } }])
    expect(await statusInList()).toBe("running")
    expect(await (await fetch(`${base}/state`)).json()).toMatchObject({ status: "running", cost: 0.9, usage_percentage: 90, events: 10, last_event_id: ids[1] })
    expect((await fetch(`${h().url}${taskPath("someone-else", taskId)}/state`)).status).toBe(404)
  })
}

for (const kind of LOG_KINDS) {
  describe(`AG-UI route [bun, ${kind} log]`, () => agUiSuite(useHarness(kind)))
  describe(`UI message stream route [bun, ${kind} log]`, () => uiSuite(useHarness(kind)))
  describe(`Task state route [bun, ${kind} log]`, () => stateSuite(useHarness(kind)))
}

describe("Agent-UI routes need the subscribe scope", () => {
  let gateway: Gateway
  beforeAll(async () => {
    gateway = await startGateway({ AUTH_JWT_SECRET: SECRET })
  })
  afterAll(() => gateway.stop())

  it("answers 401 without a token, 403 out of scope, 200 in scope", async () => {
    const taskId = uniqueTask("ui-auth")
    const mine = await hsToken({ subscribe: [`${AGENT}/*`] })
    const other = await hsToken({ subscribe: ["agent-2/*"], publish: ["*/*"] })
    for (const [method, route] of [["POST", "ag-ui"], ["GET", "ag-ui"], ["GET", "ui-message-stream"], ["GET", "state"]] as const) {
      const url = `${gateway.url}${taskPath(AGENT, taskId)}/${route}`
      const status = async (token?: string) => {
        const response = await fetch(url, { method, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
        await response.body?.cancel()
        return response.status
      }
      expect([route, await status()]).toEqual([route, 401])
      expect([route, await status(other)]).toEqual([route, 403])
      expect([route, await status(mine)]).toEqual([route, 200])
    }
  })

  it("ends an AG-UI run whose token expires with RUN_ERROR token_expired", async () => {
    const taskId = uniqueTask("ui-expiry")
    const shortLived = await hsToken({ subscribe: [`${AGENT}/*`] }, { exp: Math.floor(Date.now() / 1000) + 2 })
    const stream = await openSse(`${gateway.url}${taskPath(AGENT, taskId)}/ag-ui`, { authorization: `Bearer ${shortLived}` })
    await stream.ended
    const last = JSON.parse(stream.frames.filter((frame) => frame.data !== "").at(-1)!.data)
    expect(last).toMatchObject({ type: "RUN_ERROR", code: "token_expired" })
  }, 10_000)
})
