/**
 * A subscription opened up to date (SPEC §4.1, §8): when the task was opened,
 * the log held nothing after the position and no call was in flight, so it
 * skips the catch-up reads — but nothing stored between that look at the head
 * and the live feed being established may be lost, on the memory log and on a
 * real redis-server, even when it is the task's last event. And the catch-up it
 * starts instead is still the subscription's: `close()` stops it.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { type Context, Effect, Exit, type Fiber, Layer, Scope } from "effect"
import { AppConfig } from "../../src/config.ts"
import { type EventDraft } from "../../src/events/draft.ts"
import { LogEvent, ZeroId } from "../../src/events/envelope.ts"
import { acceptAll } from "../../src/events/filter.ts"
import { builtinRegistry } from "../../src/events/registry.ts"
import { Registry } from "../../src/events/RegistryService.ts"
import { EventLog } from "../../src/log/EventLog.ts"
import { MemoryLogLayer } from "../../src/log/MemoryEventLog.ts"
import { RedisLogLayer } from "../../src/log/RedisEventLog.ts"
import { GatewayMetrics } from "../../src/observability/metrics.ts"
import { parseRedisUrl } from "../../src/redisUrl.ts"
import { makeCatchUpReads } from "../../src/stream/catchUpReads.ts"
import { type EndReason, type Sink, Subscription, TaskStream } from "../../src/stream/TaskStream.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventually } from "../support/ports.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"

const draft = (type: string, data: Record<string, unknown>) => ({ type, data, dataJson: JSON.stringify(data) }) as unknown as EventDraft
const step = (n: number) => draft("WorkflowStepStarted", { step: n })

const recordingSink = () => {
  const events: Array<LogEvent> = []
  const ends: Array<EndReason> = []
  const sink: Sink = {
    event: (event) => void events.push(event),
    resync: () => {},
    end: (reason) => void ends.push(reason),
    backlog: () => 0,
    capacity: 1 << 20,
    whenUnder: (_mark, ready) => (ready(), () => {})
  }
  return { events, ends, sink }
}

for (const kind of ["memory", "redis"] as const) {
  describe(`A subscription opened up to date [${kind} log]`, () => {
    let server: RedisServer | undefined
    let scope: Scope.Closeable
    let services: Context.Context<TaskStream | EventLog>
    beforeAll(async () => {
      server = kind === "redis" ? await startRedis() : undefined
      const target = server === undefined ? undefined : parseRedisUrl(server.url)
      if (typeof target === "string") throw new Error(target)
      scope = Effect.runSync(Scope.make())
      const layer = TaskStream.layer.pipe(
        Layer.provideMerge(target === undefined ? MemoryLogLayer : RedisLogLayer),
        Layer.provideMerge(Layer.mergeAll(GatewayMetrics.layer, Registry.builtin)),
        Layer.provideMerge(AppConfig.layerWith({ redis: target, logLevel: "error" }))
      )
      services = (await Effect.runPromise(Layer.buildWithScope(layer, scope))) as Context.Context<TaskStream | EventLog>
    }, 20_000)
    afterAll(async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await server?.stop()
    })
    const append = (task: { agentId: string; taskId: string }, drafts: Array<EventDraft>) =>
      Effect.runPromise(Effect.gen(function*() {
        return yield* (yield* EventLog).append(task, drafts)
      }).pipe(Effect.provide(services)))
    const open = (request: Parameters<TaskStream["Service"]["open"]>[0]) =>
      Effect.runPromise(Effect.gen(function*() {
        return yield* (yield* TaskStream).open(request)
      }).pipe(Effect.provide(services)))

    it("ends with a terminal event stored after the task was opened and before its live feed was established", async () => {
      const task = { agentId: "agent-r", taskId: uniqueTask("up-to-date-end") }
      await append(task, [step(1)])
      // Live-only: the position is the newest event, so the opening is up to date.
      const opening = await open({ ...task, history: false })
      if (opening._tag !== "Ready") throw new Error(`expected Ready, got ${opening._tag}`)
      // The workflow ends while the route is still setting the stream up; no event comes after.
      await append(task, [draft("WorkflowCompleted", {})])
      const { ends, sink } = recordingSink()
      const subscription = opening.follow(sink)
      await eventually(() => ends.length > 0, 5_000, "the stream to end")
      expect(ends).toEqual(["completed"])
      subscription.close()
    })

    it("gives a client that connected before its workflow started the first events, with nothing after them", async () => {
      const task = { agentId: "agent-r", taskId: uniqueTask("up-to-date-first") }
      const opening = await open(task)
      if (opening._tag !== "Ready") throw new Error(`expected Ready, got ${opening._tag}`)
      await append(task, [step(1), step(2)])
      const { events, sink } = recordingSink()
      const subscription = opening.follow(sink)
      await eventually(() => events.length === 2, 5_000, "the two events")
      expect(events.map((event) => event.data.step)).toEqual([1, 2])
      // And live from there.
      await append(task, [step(3)])
      await eventually(() => events.length === 3, 5_000, "the live event")
      expect(events.map((event) => event.data.step)).toEqual([1, 2, 3])
      subscription.close()
    })
  })
}

describe("A subscription opened up to date, with live events held while its feed is established", () => {
  const held = LogEvent.fromDraft(builtinRegistry, "100-1", { agentId: "a", taskId: "t" }, "WorkflowStepStarted", "2026-11-24T10:00:00.000Z", { step: 1 })

  it("keeps the catch-up it starts then as its own: close() interrupts it", async () => {
    // A history read that does not answer (a read retrying through an outage).
    const log = {
      read: () => Effect.never,
      head: () => Effect.succeed({ agentId: "a", last: undefined, first: undefined, trimmed: false, calls: false }),
      inflight: () => Effect.succeed([])
    }
    const forked: Array<Fiber.Fiber<void>> = []
    const subscription = new Subscription(makeCatchUpReads(log, Effect.runFork), (catchUp) => {
      const fiber = Effect.runFork(catchUp)
      forked.push(fiber)
      return fiber
    }, "t", { agentId: "a", filter: acceptAll, compact: true, droppedOtherAgent: () => {} }, recordingSink().sink, ZeroId)
    let establish!: () => void
    subscription.begin(Effect.callback<void>((resume) => void (establish = () => resume(Effect.void))), undefined, true)
    subscription.onEvent(held, ZeroId) // comes while the channel is being established: held, so the log is read
    establish()
    await eventually(() => forked.length === 1 && forked[0].pollUnsafe() === undefined, 1_000, "the catch-up to wait on its read")
    subscription.close()
    await eventually(() => forked[0].pollUnsafe() !== undefined, 1_000, "close() to interrupt the catch-up")
  })
})
