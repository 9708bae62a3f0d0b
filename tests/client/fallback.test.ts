/** The transport fallback rules of `followTask` (SPEC §12), without a network. */
import { describe, expect, it } from "bun:test"
import { afterEnd, afterEstablished, firstPlan, type Plan, preferredFailed, preferredWorks, transportOf } from "../../src/client/fallback.ts"

const timing = { retryMs: 250, maxRetryMs: 10_000, retryPreferredMs: 30_000 }
const both = firstPlan(["websocket", "sse"])

const connect = (decision: ReturnType<typeof afterEnd>) => {
  if (decision.action !== "connect") throw new Error(`expected connect, got ${decision.action}`)
  return decision
}

describe("transport fallback decisions", () => {
  it("starts on the first transport named, and refuses an empty list", () => {
    expect(transportOf(both)).toBe("websocket")
    expect(transportOf(firstPlan(["sse", "websocket"]))).toBe("sse")
    expect(() => firstPlan([])).toThrow(/at least one transport/)
  })

  it("falls back to the next transport at once when one cannot be established or stays silent", () => {
    for (const outcome of ["failed", "silent"] as const) {
      const decision = connect(afterEnd(both, outcome, timing, false))
      expect(transportOf(decision.plan)).toBe("sse")
      expect(decision.delayMs).toBe(0)
      expect(decision.fallback).toBe(true)
    }
  })

  it("after the last transport fails, tries the first again with a growing, capped backoff", () => {
    let plan: Plan = { ...both, index: 1 }
    const delays: Array<number> = []
    for (let i = 0; i < 8; i++) {
      const decision = connect(afterEnd({ ...plan, index: 1 }, "failed", timing, false))
      expect(transportOf(decision.plan)).toBe("websocket")
      expect(decision.fallback).toBe(false)
      delays.push(decision.delayMs)
      plan = decision.plan
    }
    expect(delays.slice(0, 4)).toEqual([250, 500, 1000, 2000])
    expect(delays.at(-1)).toBe(10_000)
  })

  it("reopens a dropped link on the same transport, with backoff, and starts the backoff over once established", () => {
    const onSse: Plan = { ...both, index: 1 }
    const first = connect(afterEnd(onSse, "dropped", timing, false))
    expect(transportOf(first.plan)).toBe("sse")
    expect(first.delayMs).toBe(250)
    const second = connect(afterEnd(first.plan, "dropped", timing, false))
    expect(second.delayMs).toBe(500)
    expect(afterEstablished(second.plan, timing).plan.failures).toBe(0)
  })

  it("reconnects at once after an expired token, on the same transport", () => {
    const decision = connect(afterEnd({ ...both, failures: 3 }, "token_expired", timing, true))
    expect(decision.delayMs).toBe(0)
    expect(transportOf(decision.plan)).toBe("websocket")
  })

  it("retries a refused token only when a token function can renew it", () => {
    expect(afterEnd(both, "unauthorized", timing, false)).toEqual({ action: "give_up" })
    const decision = connect(afterEnd(both, "unauthorized", timing, true))
    expect(decision.delayMs).toBe(250)
  })

  it("on a fallback transport, tries the preferred one again later, less often while it fails", () => {
    expect(afterEstablished(both, timing).retryPreferredInMs).toBeUndefined()
    const onSse: Plan = { ...both, index: 1 }
    expect(afterEstablished(onSse, timing).retryPreferredInMs).toBe(30_000)
    const failedOnce = preferredFailed(onSse)
    expect(afterEstablished(failedOnce, timing).retryPreferredInMs).toBe(60_000)
    let manyFailures = failedOnce
    for (let i = 0; i < 5; i++) manyFailures = preferredFailed(manyFailures)
    expect(afterEstablished(manyFailures, timing).retryPreferredInMs).toBe(600_000)
    const back = preferredWorks(failedOnce)
    expect(transportOf(back)).toBe("websocket")
    expect(back.preferredFailures).toBe(0)
  })
})
