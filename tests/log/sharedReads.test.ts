/** Shared history reads: the rules that keep them correct, with the log played by an array. */
import { describe, expect, it } from "bun:test"
import { Effect } from "effect"
import { compareIds, type EventId, LogEvent, ZeroId } from "../../src/events/envelope.ts"
import { builtinRegistry } from "../../src/events/registry.ts"
import { LogUnavailable } from "../../src/log/EventLog.ts"
import { pageBytes, shareReads } from "../../src/log/sharedReads.ts"

/** Ten events; the last five carry 100 KB of data each. */
const stored = Array.from({ length: 10 }, (_, n) =>
  LogEvent.fromDraft(builtinRegistry, `100-${n}`, { agentId: "a", taskId: "t" }, "WorkflowStepStarted", "2026-11-24T10:00:00.000Z", {
    step: n,
    ...(n >= 5 ? { blob: "x".repeat(100_000) } : {})
  })
)

const counting = (fail = false) => {
  let reads = 0
  const log = {
    read: (_taskId: string, after: EventId, limit: number) =>
      Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5))).pipe(
        Effect.flatMap(() => {
          reads++
          return fail
            ? Effect.fail(new LogUnavailable({ message: "down" }))
            : Effect.succeed(stored.filter((event) => compareIds(event, after) > 0).slice(0, limit))
        })
      )
  }
  return { log, reads: () => reads }
}

describe("shared reads", () => {
  it("serves concurrent identical reads with one request and the same events", async () => {
    const source = counting()
    const shared = Effect.runSync(shareReads(source.log, { ttlMs: 1000, maxBytes: 1 << 20 }))
    const pages = await Promise.all(Array.from({ length: 20 }, () => Effect.runPromise(shared.read("t", ZeroId, 4))))
    expect(source.reads()).toBe(1)
    expect(pages.every((page) => page[0] === pages[0][0])).toBe(true)
  })

  it("keeps full pages for a moment, but never a short page (more events may follow it)", async () => {
    const source = counting()
    const shared = Effect.runSync(shareReads(source.log, { ttlMs: 1000, maxBytes: 1 << 20 }))
    await Effect.runPromise(shared.read("t", ZeroId, 4))
    await Effect.runPromise(shared.read("t", ZeroId, 4))
    expect(source.reads()).toBe(1)
    const tail = { ms: 100, seq: 7 }
    expect(await Effect.runPromise(shared.read("t", tail, 4))).toHaveLength(2)
    await Effect.runPromise(shared.read("t", tail, 4))
    expect(source.reads()).toBe(3)
  })

  it("forgets full pages after the TTL and beyond maxBytes", async () => {
    const source = counting()
    const shared = Effect.runSync(shareReads(source.log, { ttlMs: 30, maxBytes: pageBytes(stored.slice(0, 2)) }))
    await Effect.runPromise(shared.read("t", ZeroId, 2))
    await Effect.runPromise(shared.read("t", { ms: 100, seq: 1 }, 2))
    await Effect.runPromise(shared.read("t", ZeroId, 2))
    expect(source.reads()).toBe(3)
    await Bun.sleep(40)
    await Effect.runPromise(shared.read("t", ZeroId, 2))
    expect(source.reads()).toBe(4)
  })

  it("bounds what it keeps by bytes, not by pages: one page of large events can push out many small ones", async () => {
    const source = counting()
    const small = pageBytes(stored.slice(0, 2))
    const large = pageBytes(stored.slice(5, 7))
    expect(large).toBeGreaterThan(100 * small)
    // Room for the large page and one small page, not two small ones more.
    const shared = Effect.runSync(shareReads(source.log, { ttlMs: 10_000, maxBytes: large + small }))
    const read = (after: EventId) => Effect.runPromise(shared.read("t", after, 2))
    await read(ZeroId)
    await read({ ms: 100, seq: 1 })
    expect(source.reads()).toBe(2)
    await read({ ms: 100, seq: 4 })
    expect(source.reads()).toBe(3)
    // The oldest small page made room for the large one; the other two stayed.
    await read({ ms: 100, seq: 1 })
    await read({ ms: 100, seq: 4 })
    expect(source.reads()).toBe(3)
    await read(ZeroId)
    expect(source.reads()).toBe(4)
    // A page larger than the whole budget is served but never kept.
    const tiny = Effect.runSync(shareReads(source.log, { ttlMs: 10_000, maxBytes: small }))
    await Effect.runPromise(tiny.read("t", { ms: 100, seq: 4 }, 2))
    await Effect.runPromise(tiny.read("t", { ms: 100, seq: 4 }, 2))
    expect(source.reads()).toBe(6)
  })

  it("passes failures to every waiting reader and keeps nothing from them", async () => {
    const source = counting(true)
    const shared = Effect.runSync(shareReads(source.log, { ttlMs: 1000, maxBytes: 1 << 20 }))
    const failures = await Promise.all(Array.from({ length: 3 }, () => Effect.runPromise(Effect.flip(shared.read("t", ZeroId, 4)))))
    expect(failures.map((failure) => failure._tag)).toEqual(["LogUnavailable", "LogUnavailable", "LogUnavailable"])
    await Effect.runPromise(Effect.flip(shared.read("t", ZeroId, 4)))
    expect(source.reads()).toBe(2)
  })
})
