/** What only the embedded memory log does: bound its memory by forgetting idle tasks. */
import { describe, expect, it } from "bun:test"
import { Effect, Layer } from "effect"
import { AppConfig } from "../../src/config.ts"
import { EventLog } from "../../src/log/EventLog.ts"
import { MemoryLogLayer } from "../../src/log/MemoryEventLog.ts"
import { GatewayMetrics } from "../../src/observability/metrics.ts"
import { uniqueTask } from "../support/harness.ts"
import { Registry } from "../../src/events/RegistryService.ts"

const step = (n: number) => ({ type: "WorkflowStepStarted" as const, data: { step: n }, dataJson: JSON.stringify({ step: n }) })

describe("memory log", () => {
  it("forgets a task that never ended TASK_IDLE_TTL_S after its last event, and keeps one still publishing", async () => {
    const idle = { agentId: "agent-1", taskId: uniqueTask() }
    const active = { agentId: "agent-1", taskId: uniqueTask() }
    const heads = await Effect.runPromise(
      Effect.gen(function*() {
        const log = yield* EventLog
        // TASK_IDLE_TTL_S = 2: `idle` is 2.4 s old at the check, `active` 1.2 s since its last event
        // (margins of a second either way, as a loaded machine may stretch each sleep).
        yield* log.append(idle, [step(1)])
        yield* log.append(active, [step(1)])
        yield* Effect.sleep("1200 millis")
        yield* log.append(active, [step(2)])
        yield* Effect.sleep("1200 millis")
        return { idle: yield* log.head(idle.taskId), active: yield* log.head(active.taskId) }
      }).pipe(
        Effect.provide(MemoryLogLayer.pipe(Layer.provide(Layer.mergeAll(AppConfig.layerWith({ redis: undefined, taskIdleSeconds: 2 }), GatewayMetrics.layer, Registry.builtin)))),
        Effect.scoped
      )
    )
    expect(heads.idle).toEqual({ agentId: undefined, last: undefined, first: undefined, trimmed: false, calls: false })
    expect(heads.active.last?.data).toEqual({ step: 2 })
  })
})
