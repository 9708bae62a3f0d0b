/**
 * The AG-UI encoder (SPEC §9.2), pure: hand-made events in, frames out, each
 * stream read by @ag-ui/client's HttpAgent (its parser, verifier and reducer)
 * from an in-memory response.
 */
import { describe, expect, it } from "bun:test"
import { AGUIError, HttpAgent } from "@ag-ui/client"
import type { LogEvent } from "../../src/events/envelope.ts"
import { InitialState, type TaskState } from "../../src/events/state.ts"
import type { CloseReason } from "../../src/transport/connections.ts"
import { AgUiCodec } from "../../src/transport/codecs/agui.ts"
import { eventMaker } from "../support/logEvents.ts"
import { parseFrames } from "../support/sse.ts"

const RUN = { threadId: "thread-1", runId: "run-1" }

type AgUiEvent = { type: string } & Record<string, any>

/** Encode a stream; its AG-UI events (as the agent received them after verification) and raw frames. */
const encode = async (events: ReadonlyArray<LogEvent>, options: { initial?: TaskState; end?: CloseReason } = {}) => {
  const codec = new AgUiCodec(RUN, options.initial ?? InitialState)
  let text = codec.open()
  for (const event of events) text += codec.event(event)
  if (options.end !== undefined) text += codec.end(options.end)
  const response = () => new Response(text, { headers: { "content-type": "text/event-stream" } })
  const agent = new HttpAgent({ url: "http://gateway.test/ag-ui", fetch: (async () => response()) as unknown as typeof fetch })
  const agUi: Array<AgUiEvent> = []
  const failures: Array<unknown> = []
  await agent.runAgent({ runId: RUN.runId }, {
    onEvent: ({ event }) => void agUi.push(event as unknown as AgUiEvent),
    onRunFailed: ({ error }) => void failures.push(error)
  }).catch((error) => failures.push(error))
  // RUN_ERROR makes the agent report a failed run; anything else would be the verifier refusing the stream.
  expect(failures.filter((failure) => failure instanceof AGUIError).map(String)).toEqual([])
  return { agUi, frames: parseFrames(text).frames }
}

const types = (agUi: ReadonlyArray<AgUiEvent>) => agUi.map((event) => event.type).filter((type) => type !== "STATE_DELTA")
const textOf = (agUi: ReadonlyArray<AgUiEvent>, messageId: string) =>
  agUi.filter((event) => event.type === "TEXT_MESSAGE_CONTENT" && event.messageId === messageId).map((event) => event.delta).join("")

describe("AG-UI encoding", () => {
  it("maps every built-in type, begins RUN_STARTED + STATE_SNAPSHOT and ends RUN_FINISHED with the final response", async () => {
    const e = eventMaker()
    const { agUi } = await encode([
      e("WorkflowStarted", { goal: "g" }),
      e("WorkflowStepStarted", { step: 1, name: "plan" }),
      e("WorkflowLLMCallStarted", { model: "m", call_id: "c1" }),
      e("WorkflowLLMCallChunk", { chunk: "Hel", chunk_index: 0, call_id: "c1" }),
      e("WorkflowLLMCallChunk", { chunk: "", chunk_index: 1, call_id: "c1" }),
      e("WorkflowLLMCallChunk", { chunk: "lo", chunk_index: 2 }),
      e("WorkflowLLMCallCompleted", { model: "m", content: "Hello", total_cost: 0.1 }),
      e("WorkflowToolCallStarted", { tool_name: "search", tool_call_id: "t1", arguments: { q: "x" } }),
      e("WorkflowToolCallCompleted", { tool_name: "search", tool_call_id: "t1", success: true, result: { hits: 2 } }),
      e("WorkflowBudgetWarning", { cost: 0.8, limit: 1 }),
      e("WorkflowBudgetExceeded", { cost: 1.2, limit: 1 }),
      e("WorkflowPaused", { reason: "user" }),
      e("WorkflowResumed", {}),
      e("WorkflowStepCompleted", { step: 1, name: "plan" }),
      e("WorkflowStepStarted", { step: 2 }),
      e("WorkflowCompleted", { final_response: "done" })
    ])
    expect(types(agUi)).toEqual([
      "RUN_STARTED", "STATE_SNAPSHOT",
      "CUSTOM",
      "STEP_STARTED",
      "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END",
      "TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END", "TOOL_CALL_RESULT",
      "CUSTOM", "CUSTOM", "CUSTOM", "CUSTOM",
      "STEP_FINISHED",
      "STEP_STARTED",
      "STEP_FINISHED", "RUN_FINISHED"
    ])
    expect(agUi[0]).toEqual({ type: "RUN_STARTED", ...RUN })
    expect(agUi[1]).toEqual({ type: "STATE_SNAPSHOT", snapshot: InitialState })
    expect(textOf(agUi, "c1")).toBe("Hello")
    expect(agUi.find((event) => event.type === "STEP_STARTED")!.stepName).toBe("plan")
    expect(agUi.filter((event) => event.type === "STEP_STARTED")[1].stepName).toBe("2")
    expect(agUi.find((event) => event.type === "TOOL_CALL_START")).toMatchObject({ toolCallId: "t1", toolCallName: "search", parentMessageId: "c1" })
    expect(agUi.find((event) => event.type === "TOOL_CALL_ARGS")!.delta).toBe('{"q":"x"}')
    expect(agUi.find((event) => event.type === "TOOL_CALL_RESULT")).toMatchObject({ toolCallId: "t1", content: '{"hits":2}', role: "tool", messageId: "1000-5" })
    expect(agUi.filter((event) => event.type === "CUSTOM").map((event) => event.name)).toEqual([
      "WorkflowStarted", "WorkflowBudgetWarning", "WorkflowBudgetExceeded", "WorkflowPaused", "WorkflowResumed"
    ])
    expect(agUi.at(-1)).toMatchObject({ type: "RUN_FINISHED", ...RUN, result: "done" })
  })

  it("follows each stored event with a STATE_DELTA whose patches rebuild the task state", async () => {
    const e = eventMaker()
    const { agUi } = await encode([e("WorkflowStarted", { goal: "g" }), e("WorkflowPaused", {}), e("WorkflowCancelled", { reason: "stop" })])
    const deltas = agUi.filter((event) => event.type === "STATE_DELTA")
    expect(deltas).toHaveLength(3)
    let state: Record<string, unknown> = { ...agUi[1].snapshot }
    for (const { delta } of deltas) for (const op of delta) state = { ...state, [op.path.slice(1)]: op.value }
    expect(state).toMatchObject({ goal: "g", status: "cancelled", events: 3, last_event_id: "1000-2" })
    // The last delta comes before the run ends: nothing may follow RUN_ERROR.
    expect(agUi.at(-2)!.type).toBe("STATE_DELTA")
  })

  it("puts the taskstream id on the last frame an event causes, and none on chunk frames", async () => {
    const e = eventMaker()
    const { frames } = await encode([
      e("WorkflowToolCallStarted", { tool_name: "t", tool_call_id: "t1" }),
      e("WorkflowLLMCallStarted", { model: "m" }),
      e("WorkflowLLMCallChunk", { chunk: "a", chunk_index: 0 })
    ])
    expect(frames.map((frame) => frame.id)).toEqual([
      undefined, undefined,
      undefined, undefined, undefined, "1000-0",
      undefined, "1000-1",
      undefined
    ])
  })

  it("ends a failed task with RUN_ERROR carrying the error and its type, closing the open message, tool and step first", async () => {
    const e = eventMaker()
    const { agUi } = await encode([
      e("WorkflowStepStarted", { step: 1 }),
      e("WorkflowLLMCallStarted", { model: "m", call_id: "c1" }),
      e("WorkflowFailed", { error: "model exploded", error_type: "ProviderError" })
    ])
    expect(types(agUi).slice(-3)).toEqual(["TEXT_MESSAGE_END", "STEP_FINISHED", "RUN_ERROR"])
    expect(agUi.at(-1)).toMatchObject({ type: "RUN_ERROR", message: "model exploded", code: "ProviderError" })
  })

  it("ends a cancelled task with RUN_ERROR code cancelled", async () => {
    const e = eventMaker()
    const { agUi } = await encode([e("WorkflowStarted"), e("WorkflowCancelled", {})])
    expect(agUi.at(-1)).toMatchObject({ type: "RUN_ERROR", message: "cancelled", code: "cancelled" })
  })

  it("sends a failed tool call's result as its content (AG-UI has no failed result)", async () => {
    const e = eventMaker()
    const { agUi } = await encode([
      e("WorkflowToolCallStarted", { tool_name: "fetch", tool_call_id: "t1" }),
      e("WorkflowToolCallCompleted", { tool_name: "fetch", tool_call_id: "t1", success: false, result: "HTTP 500" }),
      e("WorkflowToolCallStarted", { tool_name: "fetch", tool_call_id: "t2" }),
      e("WorkflowToolCallCompleted", { tool_name: "fetch", tool_call_id: "t2", success: false })
    ])
    const results = agUi.filter((event) => event.type === "TOOL_CALL_RESULT").map((event) => event.content)
    expect(results).toEqual(["HTTP 500", "tool call failed"])
    expect(agUi.find((event) => event.type === "TOOL_CALL_ARGS")!.delta).toBe("{}")
  })

  it("sends the stored content of an LLM call that completed with no chunks", async () => {
    const e = eventMaker()
    const { agUi } = await encode([
      e("WorkflowLLMCallStarted", { model: "m" }),
      e("WorkflowLLMCallCompleted", { model: "m", content: "whole answer" }),
      e("WorkflowLLMCallStarted", { model: "m" }),
      e("WorkflowLLMCallCompleted", { model: "m" })
    ])
    expect(textOf(agUi, "1000-0")).toBe("whole answer")
    expect(types(agUi).slice(2)).toEqual([
      "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END", "TEXT_MESSAGE_START", "TEXT_MESSAGE_END"
    ])
  })

  it("keeps two calls in flight apart by call_id, and gives chunks without one to the newest open call", async () => {
    const e = eventMaker()
    const { agUi } = await encode([
      e("WorkflowLLMCallStarted", { model: "m", call_id: "a" }),
      e("WorkflowLLMCallStarted", { model: "m", call_id: "b" }),
      e("WorkflowLLMCallChunk", { chunk: "A1 ", chunk_index: 0, call_id: "a" }),
      e("WorkflowLLMCallChunk", { chunk: "B1 ", chunk_index: 0 }),
      e("WorkflowLLMCallChunk", { chunk: "A2", chunk_index: 1, call_id: "a" }),
      e("WorkflowLLMCallCompleted", { model: "m", call_id: "a", content: "A1 A2" }),
      e("WorkflowLLMCallChunk", { chunk: "B2", chunk_index: 1 }),
      e("WorkflowCompleted", {})
    ])
    expect(textOf(agUi, "a")).toBe("A1 A2")
    expect(textOf(agUi, "b")).toBe("B1 B2")
    expect(types(agUi).slice(-2)).toEqual(["TEXT_MESSAGE_END", "RUN_FINISHED"])
  })

  it("starts a fresh stream's text with a compacted chunk, whole, and skips live chunks it already covers", async () => {
    const e = eventMaker()
    // Joined mid-call: the call's start is before the resume point; the pipeline sends the compacted text first.
    const { agUi } = await encode([
      e("WorkflowLLMCallChunk", { call_id: "c1", chunk: "Hello, wor", chunk_index: 3, compacted: true }),
      e("WorkflowLLMCallChunk", { call_id: "c1", chunk: "wor", chunk_index: 3 }),
      e("WorkflowLLMCallChunk", { call_id: "c1", chunk: "ld", chunk_index: 4 }),
      e("WorkflowLLMCallCompleted", { model: "m", call_id: "c1", content: "Hello, world" })
    ])
    expect(types(agUi).slice(2)).toEqual(["TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END"])
    expect(textOf(agUi, "c1")).toBe("Hello, world")
  })

  it("sends of a compacted chunk only the part beyond what the stream already sent", async () => {
    const e = eventMaker()
    const { agUi } = await encode([
      e("WorkflowLLMCallStarted", { model: "m", call_id: "c1" }),
      e("WorkflowLLMCallChunk", { call_id: "c1", chunk: "Hel", chunk_index: 0 }),
      // After a gap in the live feed, the catch-up sends the call's whole text so far.
      e("WorkflowLLMCallChunk", { call_id: "c1", chunk: "Hello", chunk_index: 1, compacted: true }),
      e("WorkflowLLMCallChunk", { call_id: "c1", chunk: "Hello", chunk_index: 1, compacted: true }),
      e("WorkflowLLMCallChunk", { call_id: "c1", chunk: "!", chunk_index: 2 })
    ], { end: "completed" })
    expect(agUi.filter((event) => event.type === "TEXT_MESSAGE_CONTENT").map((event) => event.delta)).toEqual(["Hel", "lo", "!"])
  })

  it("maps custom types to CUSTOM with their payload", async () => {
    const e = eventMaker()
    const custom = e("WorkflowStarted", { goal: "g" })
    // A type the registry does not know reaches the encoder like any other non-mapped one.
    Object.defineProperty(custom, "type", { value: "ReviewRequested" })
    const { agUi } = await encode([custom])
    expect(agUi.find((event) => event.type === "CUSTOM")).toMatchObject({ name: "ReviewRequested", value: { goal: "g" } })
  })

  it("starts from the given state on a resumed stream, and skips a step it never saw start", async () => {
    const e = eventMaker()
    const initial = { ...InitialState, events: 5, goal: "resumed" }
    const { agUi } = await encode([e("WorkflowStepCompleted", { step: 1 }), e("WorkflowToolCallCompleted", { tool_name: "t", tool_call_id: "t0", success: true, result: "ok" })], { initial })
    expect(agUi[1]).toEqual({ type: "STATE_SNAPSHOT", snapshot: initial })
    expect(types(agUi).slice(2)).toEqual(["TOOL_CALL_RESULT"])
  })

  it("reports a stream ended without a terminal event (a slow consumer cut off) as RUN_ERROR, after closing what is open", async () => {
    const e = eventMaker()
    const { agUi } = await encode([e("WorkflowLLMCallStarted", { model: "m" })], { end: "slow_consumer" })
    expect(types(agUi).slice(-2)).toEqual(["TEXT_MESSAGE_END", "RUN_ERROR"])
    expect(agUi.at(-1)).toMatchObject({ code: "slow_consumer" })
  })

  it("ends a stream the server cuts (token expired, shutdown) with RUN_ERROR naming why, so the client reconnects", async () => {
    for (const reason of ["token_expired", "shutdown"] as const) {
      const e = eventMaker()
      const { agUi } = await encode([e("WorkflowStepStarted", { step: 1 })], { end: reason })
      expect(types(agUi).slice(-2)).toEqual(["STEP_FINISHED", "RUN_ERROR"])
      expect(agUi.at(-1)!.code).toBe(reason)
    }
  })

  it("sends heartbeats as SSE comments and a trimmed resume point as CUSTOM resync", () => {
    const codec = new AgUiCodec(RUN, InitialState)
    expect(codec.heartbeat()).toBe(": heartbeat\n\n")
    expect(JSON.parse(parseFrames(codec.resync("5-0")).frames[0].data)).toEqual({
      type: "CUSTOM", name: "resync", value: { reason: "history_trimmed", oldest: "5-0" }
    })
  })
})
