/**
 * Task states kept incrementally (SPEC §9.1), on the real memory log with its
 * reads counted: a request reads only what was appended since the last one.
 */
import { describe, expect, it } from "bun:test"
import { Effect, Layer } from "effect"
import { AppConfig } from "../../src/config.ts"
import type { EventDraft } from "../../src/events/draft.ts"
import { type EventId, parseEventId } from "../../src/events/envelope.ts"
import { EventLog } from "../../src/log/EventLog.ts"
import { MemoryLogLayer } from "../../src/log/MemoryEventLog.ts"
import { GatewayMetrics } from "../../src/observability/metrics.ts"
import { TaskStates } from "../../src/stream/TaskStates.ts"
import { Registry } from "../../src/events/RegistryService.ts"

const task = { agentId: "agent-1", taskId: "task-9" }
const draft = (type: EventDraft["type"], data: Record<string, unknown> = {}): EventDraft => ({ type, data, dataJson: JSON.stringify(data) })

/** The services over a memory log whose `read`s are recorded (the position each started after). */
const setup = () => {
  const reads: Array<EventId> = []
  const counted = Layer.effect(
    EventLog,
    Effect.gen(function*() {
      const log = yield* EventLog
      return EventLog.of({
        ...log,
        read: (taskId, after, limit) => {
          reads.push({ ms: after.ms, seq: after.seq })
          return log.read(taskId, after, limit)
        }
      })
    })
  ).pipe(Layer.provide(MemoryLogLayer))
  const layer = Layer.merge(TaskStates.layer.pipe(Layer.provide(counted)), counted).pipe(
    Layer.provideMerge(Layer.mergeAll(AppConfig.layerWith({ taskIndexMax: 100 }), GatewayMetrics.layer, Registry.builtin))
  )
  const run = <A, E>(effect: Effect.Effect<A, E, TaskStates | EventLog>) => Effect.runPromise(Effect.provide(effect, layer))
  return { reads, run }
}

describe("Task states", () => {
  it("reads only the events appended since the last request, and nothing when none were", async () => {
    const { reads, run } = setup()
    const states = await run(Effect.gen(function*() {
      const log = yield* EventLog
      const states = yield* TaskStates
      const first = yield* log.append(task, [draft("WorkflowStarted", { goal: "g" }), draft("WorkflowStepStarted", { step: 1 })])
      const a = yield* states.current(task)
      const unchanged = yield* states.current(task)
      const more = yield* log.append(task, [draft("WorkflowPaused"), draft("WorkflowLLMCallStarted", { model: "m" })])
      const b = yield* states.current(task)
      return { a, unchanged, b, ids: [...first, ...more] }
    }))
    expect(states.a).toMatchObject({ goal: "g", events: 2, status: "running" })
    expect(states.unchanged).toBe(states.a)
    expect(states.b).toMatchObject({ goal: "g", events: 4, status: "paused", llm_calls: 1, last_event_id: states.ids[3] })
    // First fold from the start, then only after the cached id; the unchanged request read nothing.
    expect(reads).toEqual([{ ms: 0, seq: 0 }, parseEventId(states.ids[1]!)!])
  })

  it("folds the log up to a resume point for a stream that resumes inside it", async () => {
    const { run } = setup()
    const early = await run(Effect.gen(function*() {
      const log = yield* EventLog
      const ids = yield* log.append(task, [draft("WorkflowStarted", { goal: "g" }), draft("WorkflowStepStarted", { step: 1 }), draft("WorkflowCompleted")])
      return yield* (yield* TaskStates).at(task, parseEventId(ids[1]!)!)
    }))
    expect(early).toMatchObject({ status: "running", events: 2, step: { step: 1, name: null } })
  })

  it("refuses the task of another agent", async () => {
    const { run } = setup()
    const failure = await run(Effect.gen(function*() {
      yield* (yield* EventLog).append(task, [draft("WorkflowStarted")])
      return yield* Effect.flip((yield* TaskStates).current({ ...task, agentId: "agent-2" }))
    }))
    expect(failure._tag).toBe("TaskNotFound")
  })
})
