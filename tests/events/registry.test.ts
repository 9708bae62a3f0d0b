import { describe, expect, it } from "bun:test"
import { Result } from "effect"
import { decodeDraft } from "../../src/events/draft.ts"
import { compareIds, formatEventId, LogEvent, parseEventId } from "../../src/events/envelope.ts"
import { parseTypeFilter } from "../../src/events/filter.ts"
import { statusSetBy } from "../../src/events/state.ts"
import { BuiltinTypes, builtinRegistry as registry, type CustomType, EventRegistry, EventTypes, storageKindOf } from "../../src/events/registry.ts"
import { APPEND_SCRIPT } from "../../src/log/appendScript.ts"
import { parseLiveMessage } from "../../src/log/liveMessage.ts"

describe("event registry", () => {
  it("lists the fifteen workflow event types of SPEC §3 with their categories and endings", () => {
    expect(EventTypes).toHaveLength(15)
    expect(registry.categoryOf("WorkflowLLMCallChunk")).toBe("llm")
    expect(registry.categoryOf("WorkflowBudgetExceeded")).toBe("budget")
    expect(Object.fromEntries(EventTypes.flatMap((type) => registry.endingOf(type) === undefined ? [] : [[type, registry.endingOf(type)]]))).toEqual({
      WorkflowCompleted: "completed",
      WorkflowFailed: "failed",
      WorkflowCancelled: "cancelled"
    })
    expect(EventTypes.filter((type) => registry.isEphemeral(type))).toEqual(["WorkflowLLMCallChunk"])
  })

  it("is the built-in fallback table of the append script", () => {
    const table = /local KINDS = \{([\s\S]*?)\n\}/.exec(APPEND_SCRIPT)![1]
    const kinds = Object.fromEntries([...table.matchAll(/(\w+) = '([dte])'/g)].map((match) => [match[1], match[2]]))
    const expected = Object.fromEntries(EventTypes.map((type) => [type, storageKindOf(BuiltinTypes[type])]))
    expect(kinds).toEqual(expected)
  })

  it("gives a task's status from how its terminal event ends it", () => {
    const at = (type: string) => LogEvent.fromDraft(registry, "1-0", { agentId: "a", taskId: "t" }, type, "2026-11-24T10:00:00.000Z", {})
    expect(statusSetBy(at("WorkflowCancelled"))).toBe("cancelled")
    expect(statusSetBy(at("WorkflowFailed"))).toBe("failed")
    expect(statusSetBy(at("WorkflowStepStarted"))).toBeUndefined()
  })
})

describe("a registry value", () => {
  const custom = (category: string, extra: Partial<CustomType> = {}): CustomType => ({ category, payload: { type: "object" }, check: () => undefined, ...extra })
  const one = new EventRegistry(new Map([["HandoffFinished", custom("lifecycle", { ends: "completed" })]]))
  const other = new EventRegistry(new Map([["ApprovalRequested", custom("approval")]]))

  it("knows its own custom types and not another registry's", () => {
    expect(one.isTerminal("HandoffFinished")).toBe(true)
    expect(other.isKnown("HandoffFinished")).toBe(false)
    expect(other.categories).toEqual(["lifecycle", "llm", "tool", "budget", "flow", "step", "approval"])
    expect(one.categories).not.toContain("approval")
    expect(registry.types).toEqual(EventTypes)
    expect(Result.isFailure(decodeDraft(one, { type: "ApprovalRequested" }))).toBe(true)
    expect(Result.isSuccess(decodeDraft(other, { type: "ApprovalRequested" }))).toBe(true)
  })

  it("makes an event terminal by the registry that builds it", () => {
    const fields = { id: "1-0", type: "HandoffFinished", agentId: "a", taskId: "t", time: "2026-11-24T10:00:00.000Z", dataJson: "{}" }
    expect(new LogEvent(fields, one).ends).toBe("completed")
    expect(new LogEvent(fields, other).terminal).toBe(false)
    // The filter lets a registry's terminal types through, whatever it names.
    const filter = parseTypeFilter(one, "step")
    expect("filter" in filter && filter.filter("HandoffFinished")).toBe(true)
  })

  it("declares only its custom types to the append script, and refuses to redefine a built-in", () => {
    expect(one.customKinds).toEqual(["HandoffFinished", "t"])
    expect(registry.customKinds).toEqual([])
    expect(() => new EventRegistry(new Map([["WorkflowStarted", custom("lifecycle")]]))).toThrow("built-in")
  })
})

describe("a stored event of a type the registry does not know", () => {
  it("passes through as an opaque durable event instead of throwing", () => {
    const event = new LogEvent({ id: "7-0", type: "RemovedType", agentId: "a", taskId: "t", time: "2026-11-24T10:00:00.000Z", dataJson: '{"x":1}' }, registry)
    expect({ type: event.type, terminal: event.terminal, ephemeral: event.ephemeral, ends: event.ends }).toEqual({
      type: "RemovedType",
      terminal: false,
      ephemeral: false,
      ends: undefined
    })
    expect(statusSetBy(event)).toBeUndefined()
    expect(JSON.parse(event.json).type).toBe("RemovedType")
    // A name that is not safe on the wire (an SSE event: line, the envelope JSON) travels as UnknownEvent.
    const odd = new LogEvent({ id: "8-0", type: 'bad"\nname', agentId: "a", taskId: "t", time: "2026-11-24T10:00:00.000Z", dataJson: "{}" }, registry)
    expect(JSON.parse(odd.json).type).toBe("UnknownEvent")
    // Live: accepted when stored (it has an id), refused when it claims to be ephemeral.
    expect(parseLiveMessage('{"id":"9-0","prev":"8-0","type":"RemovedType","agentId":"a","taskId":"t","time":"x","data":{}}', registry)?.event.type).toBe("RemovedType")
    expect(parseLiveMessage('{"type":"RemovedType","agentId":"a","taskId":"t","time":"x","data":{}}', registry)).toBeUndefined()
  })

  it("is left out by a types filter and kept without one", () => {
    const parsed = parseTypeFilter(registry, "step")
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
    const parsed = parseTypeFilter(registry, "llm, WorkflowBudgetWarning")
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
    const all = parseTypeFilter(registry, undefined)
    expect("filter" in all && EventTypes.every(all.filter)).toBe(true)
    expect(parseTypeFilter(registry, "llm,Bogus")).toEqual({ error: "unknown event type or category 'Bogus'" })
    expect(parseTypeFilter(registry, " , ")).toEqual({ error: "types lists no event type or category" })
  })
})

describe("event drafts", () => {
  it("keeps extra payload fields, accepts null for optional ones, and names the failing field", () => {
    const ok = decodeDraft(registry, { type: "WorkflowLLMCallStarted", data: { model: "m", estimated_cost: null, custom: { a: 1 } } })
    expect(Result.isSuccess(ok) && ok.success.data).toEqual({ model: "m", estimated_cost: null, custom: { a: 1 } })
    const bad = decodeDraft(registry, { type: "WorkflowToolCallCompleted", data: { tool_name: "t", tool_call_id: "1" } }, "[4]")
    expect(Result.isFailure(bad) && { field: bad.failure.field, message: bad.failure.message }).toEqual({
      field: "[4].data.success",
      message: "Missing key"
    })
  })
})

describe("LogEvent", () => {
  it("builds the envelope JSON once, exactly, and memoises encodings", () => {
    const event = LogEvent.fromDraft(registry, "5-1", { agentId: "a", taskId: "t" }, "WorkflowPaused", "2026-11-24T10:00:00.000Z", { reason: "q\"uote" })
    expect(JSON.parse(event.json)).toEqual({ id: "5-1", type: "WorkflowPaused", agentId: "a", taskId: "t", time: "2026-11-24T10:00:00.000Z", data: { reason: "q\"uote" } })
    let calls = 0
    const encode = () => {
      calls++
      return new Uint8Array([1])
    }
    expect(event.encoded("k", encode)).toBe(event.encoded("k", encode))
    expect(calls).toBe(1)
    const fromWire = parseLiveMessage(event.json, registry)!
    expect(fromWire.event.dataJson).toBe(event.dataJson)
    expect(fromWire.event.id).toBe("5-1")
    expect(fromWire.prev).toBeUndefined()
  })

  it("refuses live messages that are not the append script's envelope", () => {
    for (const bad of ['{"x":', "null", '{"type":"Nope","agentId":"a","data":{}}', '{"id":"x-1","type":"WorkflowPaused","agentId":"a","data":{}}', '{"type":"WorkflowPaused","data":{}}', "[]"]) {
      expect(parseLiveMessage(bad, registry)).toBeUndefined()
    }
  })

  it("gives a live message's prev beside the event, not on it", () => {
    const message = parseLiveMessage('{"id":"9-0","prev":"8-3","type":"WorkflowPaused","agentId":"a","taskId":"t","time":"x","data":{}}', registry)!
    expect(message.prev).toEqual({ ms: 8, seq: 3 })
    expect(JSON.parse(message.event.json)).toEqual({ id: "9-0", type: "WorkflowPaused", agentId: "a", taskId: "t", time: "x", data: {} })
    expect("prev" in message.event).toBe(false)
  })
})
