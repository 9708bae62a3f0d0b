/**
 * The log services' less frequent methods run in spans named after them, with the task id; the
 * per-request hot ones (append, read, head, inflight) run untraced.
 */
import { describe, expect, it } from "bun:test"
import { Effect, Layer, Stream, Tracer } from "effect"
import { AppConfig } from "../../src/config.ts"
import { ControlQueue } from "../../src/log/ControlQueue.ts"
import { EventLog } from "../../src/log/EventLog.ts"
import { MemoryLogLayer } from "../../src/log/MemoryEventLog.ts"
import { TaskIndex } from "../../src/log/TaskIndex.ts"
import { ZeroId } from "../../src/events/envelope.ts"
import { GatewayMetrics } from "../../src/observability/metrics.ts"
import { step } from "../support/logContract.ts"
import { Registry } from "../../src/events/RegistryService.ts"

describe("log spans", () => {
  it("names a span per index and control call, with the task id; the hot log methods and command streams are not spans", async () => {
    const spans: Array<Tracer.NativeSpan> = []
    const tracer = Tracer.make({
      span: (options) => {
        const span = new Tracer.NativeSpan(options)
        spans.push(span)
        return span
      }
    })
    const task = { agentId: "a", taskId: "traced" }
    await Effect.runPromise(
      Effect.gen(function*() {
        const log = yield* EventLog
        yield* log.append(task, [step(1)])
        yield* log.read(task.taskId, ZeroId, 10)
        yield* log.head(task.taskId)
        yield* (yield* TaskIndex).tasks(undefined, 5)
        const control = yield* ControlQueue
        const id = yield* control.append(task, { command: "pause", source: "test" })
        const [command] = yield* control.commands(task, "r").pipe(Stream.take(1), Stream.runCollect)
        expect(command.commandId).toBe(id)
        yield* control.ack(task.taskId, "r", command.id)
      }).pipe(
        Effect.provide(MemoryLogLayer.pipe(Layer.provide(Layer.mergeAll(AppConfig.layerWith({ redis: undefined }), GatewayMetrics.layer, Registry.builtin)))),
        Effect.scoped,
        Effect.withTracer(tracer)
      )
    )
    expect(spans.map((span) => span.name)).toEqual([
      "TaskIndex.tasks",
      "ControlQueue.append",
      "ControlQueue.ack"
    ])
    expect(spans[1].attributes.get("taskId")).toBe("traced")
  })
})
