/** The live channels of a log (LiveChannels.ts): a listener is in place before its channel opens. */
import { describe, expect, it } from "bun:test"
import { Effect, Exit, Scope } from "effect"
import { LogEvent } from "../../src/events/envelope.ts"
import { builtinRegistry } from "../../src/events/registry.ts"
import { LiveChannels } from "../../src/log/LiveChannels.ts"
import { makeMetrics } from "../../src/observability/metrics.ts"
import { recorder } from "../support/logContract.ts"

describe("LiveChannels", () => {
  it("delivers a message that arrives the moment the channel opens to the listener that opened it", async () => {
    const event = LogEvent.fromDraft(builtinRegistry, "100-1", { agentId: "a", taskId: "t" }, "WorkflowStarted", "2026-11-24T10:00:00.000Z", {})
    const scope = Effect.runSync(Scope.make())
    const first = recorder()
    await Effect.runPromise(
      Effect.gen(function*() {
        // A channel whose first message comes as soon as it is opened (a PUBLISH right behind the SUBSCRIBE).
        const live: LiveChannels = yield* LiveChannels.make(makeMetrics(), (taskId) =>
          Effect.sync(() => {
            live.dispatch(taskId, event, { ms: 0, seq: 0 })
            return Effect.void
          }))
        yield* live.listen("t", first.listener)
      }).pipe(Scope.provide(scope))
    )
    expect(first.events).toEqual([event])
    expect(first.prevs).toEqual([{ ms: 0, seq: 0 }])
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })
})
