/**
 * The UI message stream encoder (SPEC §9.3), pure: hand-made events in,
 * frames out, read back by the `ai` package's own transport and message reader.
 */
import { describe, expect, it } from "bun:test"
import { DefaultChatTransport, readUIMessageStream, type UIMessage } from "ai"
import type { LogEvent } from "../../src/events/envelope.ts"
import type { CloseReason } from "../../src/transport/connections.ts"
import { UiMessageStreamCodec } from "../../src/transport/codecs/uiMessageStream.ts"
import { eventMaker } from "../support/logEvents.ts"
import { parseFrames } from "../support/sse.ts"

/** Encode a stream; its chunks, and the message the SDK builds from the bytes. */
const encode = async (events: ReadonlyArray<LogEvent>, end?: CloseReason) => {
  const codec = new UiMessageStreamCodec("task-9")
  let text = codec.open()
  for (const event of events) text += codec.event(event)
  if (end !== undefined) text += codec.end(end)
  const chunks = parseFrames(text).frames.map((frame) => frame.data)
  const transport = new DefaultChatTransport({ api: "http://gateway.test/chat", fetch: (async () => new Response(text)) as unknown as typeof fetch })
  const stream = await transport.reconnectToStream({ chatId: "task-9" })
  const errors: Array<string> = []
  let message: UIMessage | undefined
  for await (const built of readUIMessageStream({ stream: stream!, onError: (error) => void errors.push(String(error)) })) message = built
  return { chunks, message: message!, errors }
}

const texts = (message: UIMessage) => message.parts.flatMap((part) => (part.type === "text" ? [part.text] : []))

describe("UI message stream encoding", () => {
  it("builds one assistant message: text, tool parts with input and output, steps, data-taskstream for the rest, then [DONE]", async () => {
    const e = eventMaker()
    const { chunks, message, errors } = await encode([
      e("WorkflowStarted", { goal: "g" }),
      e("WorkflowStepStarted", { step: 1 }),
      e("WorkflowLLMCallStarted", { model: "m", call_id: "c1" }),
      e("WorkflowLLMCallChunk", { chunk: "Hel", chunk_index: 0 }),
      e("WorkflowLLMCallChunk", { chunk: "lo", chunk_index: 1, call_id: "c1" }),
      e("WorkflowLLMCallCompleted", { model: "m", content: "Hello" }),
      e("WorkflowToolCallStarted", { tool_name: "search", tool_call_id: "t1", arguments: { q: "x" } }),
      e("WorkflowToolCallCompleted", { tool_name: "search", tool_call_id: "t1", success: true, result: { hits: 2 } }),
      e("WorkflowBudgetWarning", { cost: 1, limit: 2 }),
      e("WorkflowStepCompleted", { step: 1 }),
      e("WorkflowCompleted", { final_response: "done" })
    ])
    expect(errors).toEqual([])
    expect(chunks[0]).toBe('{"type":"start","messageId":"task-9"}')
    expect(chunks.slice(-2)).toEqual(['{"type":"finish"}', "[DONE]"])
    expect(message.id).toBe("task-9")
    expect(message.role).toBe("assistant")
    expect(texts(message)).toEqual(["Hello"])
    expect(message.parts.find((part) => part.type === "tool-search")).toMatchObject({
      toolCallId: "t1", state: "output-available", input: { q: "x" }, output: { hits: 2 }
    })
    expect(message.parts.filter((part) => part.type === "step-start")).toHaveLength(1)
    const data = message.parts.filter((part) => part.type === "data-taskstream") as Array<{ id: string; data: { type: string } }>
    expect(data.map((part) => [part.id, part.data.type])).toEqual([["1000-0", "WorkflowStarted"], ["1000-6", "WorkflowBudgetWarning"]])
  })

  it("turns a failed tool call into an output-error part", async () => {
    const e = eventMaker()
    const { message } = await encode([
      e("WorkflowToolCallStarted", { tool_name: "fetch", tool_call_id: "t1" }),
      e("WorkflowToolCallCompleted", { tool_name: "fetch", tool_call_id: "t1", success: false, result: "HTTP 500" })
    ], "completed")
    expect(message.parts.find((part) => part.type === "tool-fetch")).toMatchObject({ state: "output-error", errorText: "HTTP 500", input: {} })
  })

  it("ends a failed task with an error chunk then finish, and a cancelled one with abort", async () => {
    const failed = eventMaker()
    const { chunks, errors } = await encode([failed("WorkflowLLMCallStarted", { model: "m" }), failed("WorkflowFailed", { error: "boom" })])
    expect(chunks.slice(-4)).toEqual(['{"type":"text-end","id":"1000-0"}', '{"type":"error","errorText":"boom"}', '{"type":"finish"}', "[DONE]"])
    expect(errors).toEqual(["Error: boom"])
    const cancelled = eventMaker()
    const { chunks: abort } = await encode([cancelled("WorkflowCancelled", { reason: "user" })])
    expect(abort.slice(-2)).toEqual(['{"type":"abort","reason":"user"}', "[DONE]"])
  })

  it("sends the stored content of a call that completed with no chunks", async () => {
    const e = eventMaker()
    const { message } = await encode([e("WorkflowLLMCallStarted", { model: "m" }), e("WorkflowLLMCallCompleted", { model: "m", content: "whole" })], "completed")
    expect(texts(message)).toEqual(["whole"])
  })

  it("keeps two calls in flight in two text parts", async () => {
    const e = eventMaker()
    const { message, errors } = await encode([
      e("WorkflowLLMCallStarted", { model: "m", call_id: "a" }),
      e("WorkflowLLMCallStarted", { model: "m", call_id: "b" }),
      e("WorkflowLLMCallChunk", { chunk: "A", chunk_index: 0, call_id: "a" }),
      e("WorkflowLLMCallChunk", { chunk: "B", chunk_index: 0 }),
      e("WorkflowLLMCallCompleted", { model: "m", call_id: "a" }),
      e("WorkflowLLMCallChunk", { chunk: "b", chunk_index: 1, call_id: "b" }),
      e("WorkflowCompleted", {})
    ])
    expect(errors).toEqual([])
    expect(texts(message)).toEqual(["A", "Bb"])
  })

  it("replaces by a compacted chunk only what the stream has not sent, and continues a call across a finished step", async () => {
    const e = eventMaker()
    const { message, errors } = await encode([
      e("WorkflowStepStarted", { step: 1 }),
      e("WorkflowLLMCallChunk", { call_id: "c", chunk: "Hello, wor", chunk_index: 2, compacted: true }),
      e("WorkflowLLMCallChunk", { call_id: "c", chunk: "wor", chunk_index: 2 }),
      e("WorkflowStepCompleted", { step: 1 }),
      e("WorkflowLLMCallChunk", { call_id: "c", chunk: "ld", chunk_index: 3 }),
      e("WorkflowLLMCallCompleted", { model: "m", call_id: "c" }),
      e("WorkflowCompleted", {})
    ])
    expect(errors).toEqual([])
    expect(texts(message).join("")).toBe("Hello, world")
  })

  it("maps a custom type to a data-taskstream part holding its envelope", async () => {
    const e = eventMaker()
    const custom = e("WorkflowStarted", { ticket: 7 })
    Object.defineProperty(custom, "type", { value: "ReviewRequested" })
    const { message } = await encode([custom], "completed")
    expect(message.parts.find((part) => part.type === "data-taskstream")).toMatchObject({ data: { type: "ReviewRequested", data: { ticket: 7 } } })
  })

  it("reports a stream that ends without a terminal event as an error, then [DONE]", async () => {
    const { chunks } = await encode([], "slow_consumer")
    expect(chunks.slice(-2)).toEqual(['{"type":"error","errorText":"the client read too slowly; reconnect with the last event id"}', "[DONE]"])
  })

  it("says why when the token expires, and ends silently on shutdown (useChat resumes on its next mount)", async () => {
    const { chunks: expired } = await encode([], "token_expired")
    expect(JSON.parse(expired.at(-2)!)).toMatchObject({ type: "error", errorText: expect.stringContaining("token expired") })
    const { chunks: shutdown } = await encode([], "shutdown")
    expect(shutdown).toEqual(['{"type":"start","messageId":"task-9"}'])
  })
})
