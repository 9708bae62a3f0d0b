/**
 * The pipeline's own logic, with the log played by an array: gap detection
 * from the `prev` the live feed hands over beside each event, catch-up, pause/resume. Integration tests cover the real logs.
 */
import { describe, expect, it } from "bun:test"
import { Effect, Option } from "effect"
import { compareIds, type EventId, LogEvent, parseEventId, ZeroId } from "../../src/events/envelope.ts"
import { builtinRegistry } from "../../src/events/registry.ts"
import { acceptAll } from "../../src/events/filter.ts"
import type { InflightCall } from "../../src/log/EventLog.ts"
import { makeCatchUpReads } from "../../src/stream/catchUpReads.ts"
import { type EndReason, Subscription } from "../../src/stream/TaskStream.ts"

const task = { agentId: "a", taskId: "t" }
const stored: Array<LogEvent> = []
/** The live feed's `prev` of each stored event: the id of the one before it. */
const prevOf = new Map<LogEvent, EventId>()
const append = (n: number) => {
  const prev = stored.at(-1)
  const event = LogEvent.fromDraft(builtinRegistry, `100-${n}`, task, "WorkflowStepStarted", "2026-11-24T10:00:00.000Z", { step: n })
  if (prev !== undefined) prevOf.set(event, { ms: prev.ms, seq: prev.seq })
  stored.push(event)
  return event
}
let trimmed = false
let inflight: Array<InflightCall> = []
/** While `reads` > 0, a read sees the log only up to `upTo`: a node still catching up after a failover. */
const behind: { reads: number; upTo: EventId } = { reads: 0, upTo: ZeroId }
/** Log reads so far (history pages). */
let logReads = 0
/** While set, a read of the calls in flight answers only once a history page has been asked for. */
let inflightAwaitsPage = false
const inflightWaiting: Array<() => void> = []
const log = {
  read: (_taskId: string, after: EventId, limit: number) => {
    logReads++
    for (const answer of inflightWaiting.splice(0)) answer()
    const visible = behind.reads > 0 ? (behind.reads--, stored.filter((event) => compareIds(event, behind.upTo) <= 0)) : stored
    return Effect.succeed(visible.filter((event) => compareIds(event, after) > 0).slice(0, limit))
  },
  head: () => Effect.succeed({ agentId: "a", last: stored.at(-1), first: stored[0], trimmed, calls: inflight.length > 0 }),
  inflight: () =>
    inflightAwaitsPage
      ? Effect.callback<Array<InflightCall>>((resume) => void inflightWaiting.push(() => resume(Effect.succeed(inflight))))
      : Effect.succeed(inflight)
}
// Shared reads run on their own here; the pipeline runs them in the TaskStream layer's FiberSet.
const reads = makeCatchUpReads(log, Effect.runFork)
/** Hand `event` to `subscription` as the live feed does, with its prev. */
const live = (subscription: Subscription, event: LogEvent) => subscription.onEvent(event, prevOf.get(event))

const collect = (after: EventId = ZeroId) => {
  const steps: Array<number> = []
  const chunks: Array<Record<string, unknown>> = []
  const ends: Array<EndReason> = []
  const resyncs: Array<string> = []
  /** Everything delivered, in order: an event's id, or `chunk <text>`. */
  const order: Array<string> = []
  /** What the sink was told of the subscription's liveness (WebSocket topics listen to it). */
  const liveness: Array<"live" | "offline"> = []
  /** Catch-up fibers started. */
  const catchUps = { started: 0 }
  const subscription = new Subscription(
    reads,
    // The pipeline runs these in the subscription's FiberHandle; here, on their own.
    (catchUp) => {
      catchUps.started++
      return Effect.runFork(catchUp)
    },
    "t",
    { agentId: "a", filter: acceptAll, compact: true, droppedOtherAgent: () => {} },
    {
      event: (event) => {
        order.push(event.type === "WorkflowLLMCallChunk" ? `chunk ${event.data.chunk}` : event.id!)
        if (event.type === "WorkflowLLMCallChunk") chunks.push(event.data)
        else steps.push(event.data.step as number)
      },
      resync: (oldest) => void resyncs.push(oldest),
      end: (reason) => void ends.push(reason),
      backlog: () => 0,
      capacity: 1 << 20,
      whenUnder: (_mark, ready) => (ready(), () => {}),
      live: () => void liveness.push("live"),
      offline: () => void liveness.push("offline")
    },
    after
  )
  return { steps, chunks, ends, resyncs, order, liveness, catchUps, subscription }
}

/** Catch-ups after a gap or a resume start on the next turn. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 5))

describe("Subscription", () => {
  it("notices a live event whose prev it never saw and reads the missed events from the log", async () => {
    stored.length = 0
    const { steps, subscription } = collect()
    append(1)
    Effect.runSync(subscription.catchUp())
    live(subscription, append(2))
    append(3)
    append(4)
    live(subscription, append(5))
    live(subscription, stored[4])
    await settle()
    expect(steps).toEqual([1, 2, 3, 4, 5])
  })

  it("drops live events while paused and delivers them from the log on resume", async () => {
    stored.length = 0
    const { steps, subscription } = collect()
    Effect.runSync(subscription.catchUp())
    live(subscription, append(1))
    subscription.pause()
    live(subscription, append(2))
    live(subscription, append(3))
    expect(steps).toEqual([1])
    subscription.resume()
    live(subscription, append(4))
    await settle()
    expect(steps).toEqual([1, 2, 3, 4])
    expect(subscription.position).toBe("100-4")
  })

  it("runs one catch-up for a resume, a pause and a resume in one turn (one WebSocket frame batch)", async () => {
    stored.length = 0
    const { steps, catchUps, subscription } = collect()
    Effect.runSync(subscription.catchUp())
    live(subscription, append(1))
    subscription.pause()
    append(2)
    subscription.resume()
    subscription.pause()
    subscription.resume()
    await settle()
    live(subscription, append(3))
    expect(steps).toEqual([1, 2, 3])
    expect(catchUps.started).toBe(1)
  })

  it("ends after a terminal event and ignores what follows", () => {
    stored.length = 0
    const { steps, ends, subscription } = collect()
    Effect.runSync(subscription.catchUp())
    live(subscription, append(1))
    const done = LogEvent.fromDraft(builtinRegistry, "100-9", task, "WorkflowCompleted", "2026-11-24T10:00:00.000Z", {})
    prevOf.set(done, parseEventId("100-1")!)
    live(subscription, done)
    live(subscription, append(10))
    expect(steps).toEqual([1, undefined as unknown as number])
    expect(ends).toEqual(["completed"])
  })

  it("says resync when a resume finds its position trimmed away meanwhile", async () => {
    stored.length = 0
    trimmed = false
    const { steps, resyncs, subscription } = collect()
    Effect.runSync(subscription.catchUp())
    live(subscription, append(1))
    subscription.pause()
    for (let n = 2; n <= 6; n++) append(n)
    stored.splice(0, 3)
    trimmed = true
    subscription.resume()
    await settle()
    expect(resyncs).toEqual(["100-4"])
    expect(steps).toEqual([1, 4, 5, 6])
    trimmed = false
  })

  it("sends a call's text after its start, or before the live chunks when its start was trimmed away", () => {
    stored.length = 0
    for (let n = 1; n <= 3; n++) append(n)
    inflight = [
      { callId: "kept", started: { ms: 100, seq: 2 }, model: undefined, text: "ab", index: 1 },
      { callId: "trimmed", started: { ms: 99, seq: 0 }, model: "m", text: "xyz", index: 2 }
    ]
    const { steps, chunks, subscription } = collect()
    // The trimmed call started before the first retained event but after the resume point.
    Effect.runSync(subscription.catchUp())
    expect(steps).toEqual([1, 2, 3])
    expect(chunks.map((chunk) => [chunk.call_id, chunk.chunk, chunk.compacted])).toEqual([["kept", "ab", true], ["trimmed", "xyz", true]])
    inflight = []
  })
  it("asks for the calls in flight and the first page together (one round trip), and still sends a call's text after its start", async () => {
    stored.length = 0
    for (let n = 1; n <= 3; n++) append(n)
    inflight = [{ callId: "c", started: { ms: 100, seq: 2 }, model: undefined, text: "ab", index: 1 }]
    inflightAwaitsPage = true
    try {
      const { order, subscription } = collect()
      // Asked one after the other, the calls in flight would wait for a page read that never comes.
      const caughtUp = Effect.runPromise(subscription.catchUp().pipe(Effect.timeoutOption(1000)))
      expect(Option.isSome(await caughtUp)).toBe(true)
      expect(order).toEqual(["100-1", "100-2", "chunk ab", "100-3"])
    } finally {
      inflightAwaitsPage = false
      inflight = []
    }
  })
  it("sends a call's text after its start when the calls in flight were read after the page (the start arrives live)", () => {
    stored.length = 0
    append(1)
    append(2)
    const started = LogEvent.fromDraft(builtinRegistry, "100-3", task, "WorkflowLLMCallStarted", "2026-11-24T10:00:00.000Z", { call_id: "c", model: "m" })
    prevOf.set(started, { ms: 100, seq: 2 })
    stored.push(started)
    inflight = [{ callId: "c", started: { ms: 100, seq: 3 }, model: "m", text: "ab", index: 1 }]
    // The page was read just before the call started; the calls in flight just after.
    behind.reads = 1
    behind.upTo = { ms: 100, seq: 2 }
    try {
      const { order, subscription } = collect()
      live(subscription, started)
      Effect.runSync(subscription.catchUp())
      expect(order).toEqual(["100-1", "100-2", "100-3", "chunk ab"])
    } finally {
      inflight = []
    }
  })
  it("keeps a token chunk held while catching up between the stored events around it, even when the read reaches the end first", () => {
    stored.length = 0
    const { order, ends, subscription } = collect()
    // All of it arrives live while the first log read is still on its way, and that read returns it all.
    live(subscription, append(1))
    live(subscription, LogEvent.fromDraft(builtinRegistry, undefined, task, "WorkflowLLMCallChunk", "2026-11-24T10:00:00.000Z", { chunk: "Hi", chunk_index: 0, call_id: "c" }))
    live(subscription, append(2))
    const done = LogEvent.fromDraft(builtinRegistry, "100-3", task, "WorkflowCompleted", "2026-11-24T10:00:00.000Z", {})
    prevOf.set(done, { ms: 100, seq: 2 })
    stored.push(done)
    live(subscription, done)
    Effect.runSync(subscription.catchUp())
    expect(order).toEqual(["100-1", "chunk Hi", "100-2", "100-3"])
    expect(ends).toEqual(["completed"])
  })
  it("reads a gap again for a while when the log is behind (a failover), instead of passing over what it has not seen yet", async () => {
    stored.length = 0
    const { steps, subscription } = collect()
    append(1)
    Effect.runSync(subscription.catchUp())
    append(2) // its live message is lost
    behind.reads = 3
    behind.upTo = { ms: 100, seq: 1 }
    live(subscription, append(3))
    for (let waited = 0; steps.length < 3 && waited < 3000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50))
    expect(steps).toEqual([1, 2, 3])
    expect(behind.reads).toBe(0)
  })

  describe("opened up to date (nothing stored after the position, no call in flight)", () => {
    it("goes live without reading the log, and a live event that follows the position goes out as it is", () => {
      stored.length = 0
      const first = append(1)
      const { steps, subscription } = collect(first)
      const reads = logReads
      subscription.begin(Effect.void, undefined, true)
      live(subscription, append(2))
      live(subscription, append(3))
      expect(steps).toEqual([2, 3])
      expect(logReads).toBe(reads)
    })

    it("reads the log when the head, read again once the live feed is established, shows an event stored meanwhile — even with nothing after it", () => {
      stored.length = 0
      const first = append(1)
      const { steps, subscription } = collect(first)
      append(2) // stored between the opening's head read and the subscription: no live message will say so
      subscription.begin(Effect.void, undefined, true)
      expect(steps).toEqual([2])
      live(subscription, append(3))
      expect(steps).toEqual([2, 3])
    })

    it("reads the calls in flight and the log when a call started meanwhile, before its live chunks", () => {
      stored.length = 0
      const first = append(1)
      const { order, subscription } = collect(first)
      const reads = logReads
      // A call starts and streams a chunk before the subscription is established.
      const started = LogEvent.fromDraft(builtinRegistry, "100-2", task, "WorkflowLLMCallStarted", "2026-11-24T10:00:00.000Z", { call_id: "c", model: "m" })
      prevOf.set(started, { ms: 100, seq: 1 })
      stored.push(started)
      inflight = [{ callId: "c", started: { ms: 100, seq: 2 }, model: "m", text: "Hel", index: 0 }]
      subscription.begin(Effect.void, undefined, true)
      inflight = []
      live(subscription, LogEvent.fromDraft(builtinRegistry, undefined, task, "WorkflowLLMCallChunk", "2026-11-24T10:00:00.000Z", { chunk: "lo", chunk_index: 1, call_id: "c" }))
      expect(logReads).toBeGreaterThan(reads)
      expect(order).toEqual(["100-2", "chunk Hel", "chunk lo"])
    })

    it("catches up on resume when it was paused while its opening read the head (a WebSocket pause right after subscribe)", async () => {
      stored.length = 0
      const first = append(1)
      const { steps, subscription } = collect(first)
      let establish!: () => void
      subscription.begin(Effect.callback<void>((resume) => void (establish = () => resume(Effect.void))), undefined, true)
      subscription.pause()
      establish()
      await settle()
      append(2)
      subscription.resume()
      await settle()
      live(subscription, append(3))
      expect(steps).toEqual([2, 3])
    })
  })

  describe("in step (WebSocket topics)", () => {
    const chunk = (index: number) =>
      LogEvent.fromDraft(builtinRegistry, undefined, task, "WorkflowLLMCallChunk", "2026-11-24T10:00:00.000Z", { chunk: `c${index}`, chunk_index: index, call_id: "c" })

    it("tells its sink when it goes live and when it stops being live (paused, catching up after a gap, closed)", async () => {
      stored.length = 0
      const { liveness, subscription } = collect()
      append(1)
      Effect.runSync(subscription.catchUp())
      expect(liveness).toEqual(["live"])
      subscription.pause()
      expect(liveness).toEqual(["live", "offline"])
      subscription.resume()
      await settle()
      expect(liveness).toEqual(["live", "offline", "live"])
      append(2)
      live(subscription, append(3)) // 2 was missed: a catch-up
      expect(liveness).toEqual(["live", "offline", "live", "offline"])
      await settle()
      subscription.close()
      expect(liveness).toEqual(["live", "offline", "live", "offline", "live", "offline"])
    })

    it("is in step with another live subscription only at the same position, expecting the same chunks", async () => {
      stored.length = 0
      append(1)
      const a = collect()
      const b = collect()
      Effect.runSync(a.subscription.catchUp())
      expect(b.subscription.joinStep(a.subscription)).toBe(false) // b is not live yet
      Effect.runSync(b.subscription.catchUp())
      expect(b.subscription.joinStep(a.subscription)).toBe(true)
      // a sees one more event than b: not in step until b has it too.
      const next = append(2)
      live(a.subscription, next)
      expect(b.subscription.joinStep(a.subscription)).toBe(false)
      live(b.subscription, next)
      expect(b.subscription.joinStep(a.subscription)).toBe(true)
      // A chunk b has not passed on: b would pass on one a drops (or the reverse).
      const first = chunk(0)
      live(a.subscription, first)
      expect(b.subscription.joinStep(a.subscription)).toBe(false)
      expect(a.subscription.joinStep(b.subscription)).toBe(false)
      live(b.subscription, first)
      expect(b.subscription.joinStep(a.subscription)).toBe(true)
      // In step, they pass on the same events from then on.
      for (const event of [chunk(1), chunk(1), append(3)]) {
        live(a.subscription, event)
        live(b.subscription, event)
      }
      expect(b.order).toEqual(a.order)
      a.subscription.pause()
      expect(b.subscription.joinStep(a.subscription)).toBe(false) // a is not live
    })
  })
})
