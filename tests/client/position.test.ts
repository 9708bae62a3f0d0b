/** Exactly-once delivery across reconnects and transport switches, and the SSE frame parser of the fetch transport. */
import { describe, expect, it } from "bun:test"
import type { TaskEvent } from "../../src/client/events.ts"
import { Position } from "../../src/client/position.ts"
import { SseParser } from "../../src/client/sseLink.ts"

const durable = (id: string, type = "WorkflowStepStarted", data: Record<string, unknown> = { step: 1 }) =>
  ({ id, type, agentId: "a", taskId: "t", time: "", data }) as unknown as TaskEvent
const chunk = (chunk_index: number, extra: Record<string, unknown> = {}) =>
  ({ id: undefined, type: "WorkflowLLMCallChunk", agentId: "a", taskId: "t", time: "", data: { chunk: `c${chunk_index}`, chunk_index, ...extra } }) as unknown as TaskEvent

describe("Position", () => {
  it("passes each durable event once, in id order, and moves past it", () => {
    const position = new Position("5-0")
    expect(position.accept(durable("4-9"))).toBe(false)
    expect(position.accept(durable("5-0"))).toBe(false)
    expect(position.accept(durable("5-1"))).toBe(true)
    expect(position.accept(durable("5-1"))).toBe(false)
    expect(position.lastEventId).toBe("5-1")
  })

  it("passes a live chunk once per call and index, and a compacted chunk always (it replaces the call's text)", () => {
    const position = new Position(undefined)
    expect([0, 1, 1, 2, 0].map((i) => position.accept(chunk(i, { call_id: "x" })))).toEqual([true, true, false, true, false])
    // Two calls in flight: their indexes are separate.
    expect(position.accept(chunk(0, { call_id: "y" }))).toBe(true)
    // A new link sends the text so far as one compacted chunk, then live chunks after its index.
    expect(position.accept(chunk(1, { call_id: "x", compacted: true }))).toBe(true)
    expect(position.accept(chunk(2, { call_id: "x" }))).toBe(true)
    expect(position.accept(chunk(2, { call_id: "x" }))).toBe(false)
  })

  it("starts counting again when a call without call_id starts", () => {
    const position = new Position(undefined)
    expect(position.accept(chunk(0))).toBe(true)
    expect(position.accept(chunk(1))).toBe(true)
    expect(position.accept(durable("9-0", "WorkflowLLMCallStarted", { model: "m" }))).toBe(true)
    expect(position.accept(chunk(0))).toBe(true)
  })
})

describe("SSE frame parser", () => {
  it("splits frames across chunk boundaries, ignores comments and retry lines, joins multi-line data", () => {
    const frames: Array<[string, string]> = []
    const parser = new SseParser()
    const emit = (event: string, data: string) => frames.push([event, data])
    for (const part of ["retry: 1000\n\n: comment\nid: 1-0\nev", "ent: WorkflowStepStarted\r\ndata: {\"a\":", "1}\n\n", "data: x\ndata: y\n\nevent: heartbeat\ndata: {}\n"]) {
      parser.push(part, emit)
    }
    expect(frames).toEqual([["WorkflowStepStarted", "{\"a\":1}"], ["message", "x\ny"]])
    parser.push("\n", emit)
    expect(frames.at(-1)).toEqual(["heartbeat", "{}"])
  })
})
