/** The live channels of a log (LiveChannels.ts): a listener is in place before its channel opens. */
import { describe, expect, it } from "bun:test"
import { Effect, Exit, Scope } from "effect"
import { LogEvent } from "../../src/events/envelope.ts"
import { builtinRegistry } from "../../src/events/registry.ts"
import { LiveChannels } from "../../src/log/LiveChannels.ts"
import type { LiveListener } from "../../src/log/LiveFeed.ts"
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
        const live: LiveChannels = yield* LiveChannels.make(makeMetrics(), {
          open: (taskId) => {
            live.dispatch(taskId, event, { ms: 0, seq: 0 })
            return undefined
          },
          close: () => {}
        })
        yield* live.listen("t", first.listener)
      }).pipe(Scope.provide(scope))
    )
    expect(first.events).toEqual([event])
    expect(first.prevs).toEqual([{ ms: 0, seq: 0 }])
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })
  it("opens a task's channel for its first listener, closes it when the last one leaves, and closes the rest with its scope", async () => {
    const scope = Effect.runSync(Scope.make())
    const opened: Array<string> = []
    const closed: Array<string> = []
    const establish = new Map<string, () => void>()
    const live = await Effect.runPromise(
      LiveChannels.make(makeMetrics(), {
        open: (taskId) => {
          opened.push(taskId)
          return new Promise<void>((resolve) => establish.set(taskId, resolve))
        },
        close: (taskId) => void closed.push(taskId)
      }).pipe(Scope.provide(scope))
    )
    const [a, b, c] = [recorder(), recorder(), recorder()]
    let ready = 0
    // Both wait for the one subscription: neither completes before it is established.
    void Effect.runPromise(live.attach("t", a.listener)).then(() => ready++)
    void Effect.runPromise(live.attach("t", b.listener)).then(() => ready++)
    void Effect.runPromise(live.attach("u", c.listener))
    expect(opened).toEqual(["t", "u"])
    await Promise.resolve()
    expect(ready).toBe(0)
    establish.get("t")!()
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(ready).toBe(2)
    const event = LogEvent.fromDraft(builtinRegistry, "100-1", { agentId: "a", taskId: "t" }, "WorkflowStarted", "2026-11-24T10:00:00.000Z", {})
    live.dispatch("t", event, undefined)
    expect([a.events.length, b.events.length, c.events.length]).toEqual([1, 1, 0])
    live.detach("t", a.listener)
    expect(closed).toEqual([])
    live.detach("t", a.listener) // twice: nothing more
    live.detach("t", b.listener)
    expect(closed).toEqual(["t"])
    expect(live.size).toBe(1)
    await Effect.runPromise(Scope.close(scope, Exit.void))
    expect(closed).toEqual(["t", "u"])
    expect(live.size).toBe(0)
  })
  it("hands events and gaps to every listener of a task as they come and go", async () => {
    const scope = Effect.runSync(Scope.make())
    const closed: Array<string> = []
    let establish = () => {}
    const live = await Effect.runPromise(
      LiveChannels.make(makeMetrics(), {
        open: () => new Promise<void>((resolve) => (establish = resolve)),
        close: (taskId) => void closed.push(taskId)
      }).pipe(Scope.provide(scope))
    )
    const event = (n: number) =>
      LogEvent.fromDraft(builtinRegistry, `100-${n}`, { agentId: "a", taskId: "t" }, "WorkflowStepStarted", "2026-11-24T10:00:00.000Z", { step: n })
    const [a, b, c] = [recorder(), recorder(), recorder()]
    const first = Effect.runPromise(live.attach("t", a.listener))
    establish()
    await first
    // Established: a listener that comes later does not wait.
    let joined = false
    void Effect.runPromise(live.attach("t", b.listener)).then(() => (joined = true))
    await Promise.resolve()
    await Promise.resolve()
    expect(joined).toBe(true)
    live.dispatch("t", event(1), undefined)
    live.attach("t", c.listener)
    live.gap("t")
    live.detach("t", a.listener)
    live.dispatch("t", event(2), undefined)
    expect([a.events.length, b.events.length, c.events.length]).toEqual([1, 2, 1])
    expect([a.gaps(), b.gaps(), c.gaps()]).toEqual([1, 1, 1])
    live.detach("t", b.listener)
    expect(closed).toEqual([])
    live.detach("t", c.listener)
    expect(closed).toEqual(["t"])
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })
  it("makes a task followed again, while its first subscription is still on its way, wait for its own", async () => {
    const scope = Effect.runSync(Scope.make())
    const establish: Array<() => void> = []
    const calls: Array<string> = []
    const live = await Effect.runPromise(
      LiveChannels.make(makeMetrics(), {
        open: (taskId) => {
          calls.push(`open ${taskId}`)
          return new Promise<void>((resolve) => establish.push(resolve))
        },
        close: (taskId) => void calls.push(`close ${taskId}`)
      }).pipe(Scope.provide(scope))
    )
    const [a, b, c] = [recorder(), recorder(), recorder()]
    void Effect.runPromise(live.attach("t", a.listener))
    live.detach("t", a.listener)
    const ready: Array<string> = []
    void Effect.runPromise(live.attach("t", b.listener)).then(() => ready.push("b"))
    // The first subscription is confirmed: not the one b waits for.
    establish[0]()
    await new Promise((resolve) => setTimeout(resolve, 5))
    void Effect.runPromise(live.attach("t", c.listener)).then(() => ready.push("c"))
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(ready).toEqual([])
    establish[1]()
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(ready).toEqual(["b", "c"])
    expect(calls).toEqual(["open t", "close t", "open t"])
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })
  it("lets a listener leave while it is handed an event; the others still get it", async () => {
    const scope = Effect.runSync(Scope.make())
    const live = await Effect.runPromise(LiveChannels.make(makeMetrics(), { open: () => undefined, close: () => {} }).pipe(Scope.provide(scope)))
    const event = LogEvent.fromDraft(builtinRegistry, "100-1", { agentId: "a", taskId: "t" }, "WorkflowStepStarted", "2026-11-24T10:00:00.000Z", { step: 1 })
    const got: Array<string> = []
    const leaving: LiveListener = {
      onEvent: () => {
        got.push("leaving")
        live.detach("t", leaving)
      },
      onGap: () => {}
    }
    const staying = recorder()
    live.attach("t", leaving)
    live.attach("t", staying.listener)
    live.dispatch("t", event, undefined)
    live.dispatch("t", event, undefined)
    expect(got).toEqual(["leaving"])
    expect(staying.events).toHaveLength(2)
    live.detach("t", staying.listener)
    expect(live.has("t")).toBe(false)
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })
})
