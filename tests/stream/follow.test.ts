/** TaskStream's `follow`: a subscription whose start throws leaves nothing behind (its place among the live listeners included). */
import { describe, expect, it } from "bun:test"
import { Effect, Exit, Layer, Scope } from "effect"
import { AppConfig } from "../../src/config.ts"
import { Registry } from "../../src/events/RegistryService.ts"
import { LiveFeed, type LiveListener } from "../../src/log/LiveFeed.ts"
import { MemoryLogLayer } from "../../src/log/MemoryEventLog.ts"
import { GatewayMetrics } from "../../src/observability/metrics.ts"
import { type Sink, TaskStream } from "../../src/stream/TaskStream.ts"

const sink: Sink = {
  event: () => {},
  resync: () => {},
  end: () => {},
  backlog: () => 0,
  capacity: 1 << 20,
  whenUnder: (_mark, ready) => (ready(), () => {})
}

describe("TaskStream.follow", () => {
  it("closes the subscription it made when attaching it to the live feed throws", async () => {
    const detached: Array<LiveListener> = []
    const failing = Layer.effect(
      LiveFeed,
      Effect.map(LiveFeed, (feed) =>
        LiveFeed.of({
          ...feed,
          attach: () => {
            throw new Error("the live feed refused")
          },
          detach: (_taskId, listener) => void detached.push(listener)
        }))
    )
    const scope = Effect.runSync(Scope.make())
    const layer = TaskStream.layer.pipe(
      Layer.provide(failing.pipe(Layer.provide(MemoryLogLayer))),
      Layer.provideMerge(MemoryLogLayer),
      Layer.provideMerge(Layer.mergeAll(GatewayMetrics.layer, Registry.builtin)),
      Layer.provideMerge(AppConfig.layerWith({ redis: undefined, logLevel: "error" }))
    )
    try {
      const services = await Effect.runPromise(Layer.buildWithScope(layer, scope))
      const opening = await Effect.runPromise(
        Effect.gen(function*() {
          return yield* (yield* TaskStream).open({ agentId: "a", taskId: "t" })
        }).pipe(Effect.provide(services))
      )
      if (opening._tag !== "Ready") throw new Error("expected a task to follow")
      expect(() => opening.follow(sink)).toThrow("the live feed refused")
      // Closed: it gave its place back (the feed was told), once.
      expect(detached).toHaveLength(1)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})
