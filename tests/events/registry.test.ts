import { describe, expect, it } from "bun:test"
import { Result } from "effect"
import { decodeDraft } from "../../src/events/draft.ts"
import { compareIds, formatEventId, LogEvent, parseEventId } from "../../src/events/envelope.ts"
import { parseTypeFilter } from "../../src/events/filter.ts"
import { statusSetBy } from "../../src/events/state.ts"
import { BuiltinTypes, categoryOf, endingOf, EventTypes, isEphemeral, storageKindOf } from "../../src/events/registry.ts"
import { APPEND_SCRIPT } from "../../src/log/appendScript.ts"

describe("event registry", () => {
  it("lists the fifteen workflow event types of SPEC §3 with their categories and endings", () => {
    expect(EventTypes).toHaveLength(15)
    expect(categoryOf("WorkflowLLMCallChunk")).toBe("llm")
    expect(categoryOf("WorkflowBudgetExceeded")).toBe("budget")
    expect(Object.fromEntries(EventTypes.flatMap((type) => endingOf(type) === undefined ? [] : [[type, endingOf(type)]]))).toEqual({
      WorkflowCompleted: "completed",
      WorkflowFailed: "failed",
      WorkflowCancelled: "cancelled"
    })
    expect(EventTypes.filter(isEphemeral)).toEqual(["WorkflowLLMCallChunk"])
  })

  it("is the built-in fallback table of the append script", () => {
    const table = /local KINDS = \{([\s\S]*?)\n\}/.exec(APPEND_SCRIPT)![1]
    const kinds = Object.fromEntries([...table.matchAll(/(\w+) = '([dte])'/g)].map((match) => [match[1], match[2]]))
    const expected = Object.fromEntries(EventTypes.map((type) => [type, storageKindOf(BuiltinTypes[type])]))
    expect(kinds).toEqual(expected)
  })

  it("gives a task's status from how its terminal event ends it", () => {
    const at = (type: string) => LogEvent.fromDraft("1-0", { agentId: "a", taskId: "t" }, type, "2026-11-24T10:00:00.000Z", {})
    expect(statusSetBy(at("WorkflowCancelled"))).toBe("cancelled")
    expect(statusSetBy(at("WorkflowFailed"))).toBe("failed")
    expect(statusSetBy(at("WorkflowStepStarted"))).toBeUndefined()
  })
})

describe("a stored event of a type the registry does not know", () => {
  it("passes through as an opaque durable event instead of throwing", () => {
    const event = new LogEvent({ id: "7-0", type: "RemovedType", agentId: "a", taskId: "t", time: "2026-11-24T10:00:00.000Z", dataJson: '{"x":1}' })
    expect({ type: event.type, terminal: event.terminal, ephemeral: event.ephemeral, ends: event.ends }).toEqual({
      type: "RemovedType",
      terminal: false,
      ephemeral: false,
      ends: undefined
    })
    expect(statusSetBy(event)).toBeUndefined()
    expect(JSON.parse(event.json).type).toBe("RemovedType")
    // A name that is not safe on the wire (an SSE event: line, the envelope JSON) travels as UnknownEvent.
    const odd = new LogEvent({ id: "8-0", type: 'bad"\nname', agentId: "a", taskId: "t", time: "2026-11-24T10:00:00.000Z", dataJson: "{}" })
    expect(JSON.parse(odd.json).type).toBe("UnknownEvent")
    // Live: accepted when stored (it has an id), refused when it claims to be ephemeral.
    expect(LogEvent.fromMessage('{"id":"9-0","prev":"8-0","type":"RemovedType","agentId":"a","taskId":"t","time":"x","data":{}}')?.type).toBe("RemovedType")
    expect(LogEvent.fromMessage('{"type":"RemovedType","agentId":"a","taskId":"t","time":"x","data":{}}')).toBeUndefined()
  })

  it("is left out by a types filter and kept without one", () => {
    const parsed = parseTypeFilter("step")
    if ("error" in parsed) throw new Error(parsed.error)
    expect(parsed.filter("RemovedType")).toBe(false)
  })
})

describe("event ids", () => {
  it("parse, format and compare numerically, not as text", () => {
    const a = parseEventId("1732400000000-9")!
    const b = parseEventId("1732400000000-10")!
    expect(compareIds(a, b)).toBeLessThan(0)
    expect(compareIds(parseEventId("999-0")!, parseEventId("1000-0")!)).toBeLessThan(0)
    expect(formatEventId(b)).toBe("1732400000000-10")
    for (const bad of ["", "12", "12-", "-1", "a-1", "1-1-1", "1.5-0", "1732400000000-0 "]) expect(parseEventId(bad)).toBeUndefined()
  })
})

describe("types filter", () => {
  it("accepts types and categories and always lets terminal events through", () => {
    const parsed = parseTypeFilter("llm, WorkflowBudgetWarning")
    if ("error" in parsed) throw new Error(parsed.error)
    expect(EventTypes.filter(parsed.filter).sort()).toEqual([
      "WorkflowBudgetWarning",
      "WorkflowCancelled",
      "WorkflowCompleted",
      "WorkflowFailed",
      "WorkflowLLMCallChunk",
      "WorkflowLLMCallCompleted",
      "WorkflowLLMCallStarted"
    ])
  })

  it("accepts everything when empty and names an unknown entry", () => {
    const all = parseTypeFilter(undefined)
    expect("filter" in all && EventTypes.every(all.filter)).toBe(true)
    expect(parseTypeFilter("llm,Bogus")).toEqual({ error: "unknown event type or category 'Bogus'" })
    expect(parseTypeFilter(" , ")).toEqual({ error: "types lists no event type or category" })
  })
})

describe("event drafts", () => {
  it("keeps extra payload fields, accepts null for optional ones, and names the failing field", () => {
    const ok = decodeDraft({ type: "WorkflowLLMCallStarted", data: { model: "m", estimated_cost: null, custom: { a: 1 } } })
    expect(Result.isSuccess(ok) && ok.success.data).toEqual({ model: "m", estimated_cost: null, custom: { a: 1 } })
    const bad = decodeDraft({ type: "WorkflowToolCallCompleted", data: { tool_name: "t", tool_call_id: "1" } }, "[4]")
    expect(Result.isFailure(bad) && { field: bad.failure.field, message: bad.failure.message }).toEqual({
      field: "[4].data.success",
      message: "Missing key"
    })
  })
})

describe("LogEvent", () => {
  it("builds the envelope JSON once, exactly, and memoises encodings", () => {
    const event = LogEvent.fromDraft("5-1", { agentId: "a", taskId: "t" }, "WorkflowPaused", "2026-11-24T10:00:00.000Z", { reason: "q\"uote" })
    expect(JSON.parse(event.json)).toEqual({ id: "5-1", type: "WorkflowPaused", agentId: "a", taskId: "t", time: "2026-11-24T10:00:00.000Z", data: { reason: "q\"uote" } })
    let calls = 0
    const encode = () => {
      calls++
      return new Uint8Array([1])
    }
    expect(event.encoded("k", encode)).toBe(event.encoded("k", encode))
    expect(calls).toBe(1)
    const fromWire = LogEvent.fromMessage(event.json)!
    expect(fromWire.dataJson).toBe(event.dataJson)
    expect(fromWire.id).toBe("5-1")
  })

  it("refuses live messages that are not the append script's envelope", () => {
    for (const bad of ['{"x":', "null", '{"type":"Nope","agentId":"a","data":{}}', '{"id":"x-1","type":"WorkflowPaused","agentId":"a","data":{}}', '{"type":"WorkflowPaused","data":{}}', "[]"]) {
      expect(LogEvent.fromMessage(bad)).toBeUndefined()
    }
  })
})
