import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { Effect, Fiber, Layer, Stream } from "effect"
import { AppConfig } from "../../src/config.ts"
import { ControlQueue } from "../../src/log/ControlQueue.ts"
import { MemoryLogLayer } from "../../src/log/MemoryEventLog.ts"
import { RedisLogLayer } from "../../src/log/RedisEventLog.ts"
import { GatewayMetrics } from "../../src/observability/metrics.ts"
import { LOG_KINDS, uniqueTask } from "../support/harness.ts"
import { startRedis, type RedisServer } from "../support/redis.ts"
import { Registry } from "../../src/events/RegistryService.ts"

for (const kind of LOG_KINDS) {
  describe(`ControlQueue contract [${kind} log]`, () => {
    let redis: RedisServer | undefined
    beforeAll(async () => {
      if (kind === "redis") redis = await startRedis()
    })
    afterAll(() => redis?.stop())

    const run = <A>(program: Effect.Effect<A, unknown, ControlQueue>) => {
      const layer = (kind === "memory" ? MemoryLogLayer : RedisLogLayer).pipe(
        Layer.provide(Layer.mergeAll(AppConfig.layerWith({ redis: redis === undefined ? undefined : { kind: "standalone", url: redis.url } }), GatewayMetrics.layer, Registry.builtin))
      )
      return Effect.runPromise(program.pipe(Effect.provide(layer)))
    }

    it("hands a reader its unacknowledged commands first, then new ones, and remembers acknowledgements", async () => {
      const task = { agentId: "agent-1", taskId: uniqueTask() }
      const result = await run(
        Effect.gen(function*() {
          const queue = yield* ControlQueue
          const ids: Array<string> = []
          for (const command of ["pause", "resume", "cancel"] as const) ids.push(yield* queue.append(task, { command, source: "test" }))
          const again = yield* queue.append(task, { command: "pause", source: "test", idempotencyKey: "k" })
          expect(yield* queue.append(task, { command: "cancel", source: "test", idempotencyKey: "k" })).toBe(again)
          const firstRun = yield* queue.commands(task, "worker").pipe(Stream.take(2), Stream.runCollect)
          yield* queue.ack(task.taskId, "worker", firstRun[0].id)
          const secondRun = yield* queue.commands(task, "worker").pipe(Stream.take(3), Stream.runCollect)
          const otherReader = yield* queue.commands(task, "auditor").pipe(Stream.take(4), Stream.runCollect)
          // A command queued while the reader waits arrives live.
          const waiting = yield* queue.commands(task, "auditor").pipe(Stream.drop(4), Stream.take(1), Stream.runCollect, Effect.forkChild)
          yield* Effect.sleep("50 millis")
          const late = yield* queue.append(task, { command: "resume", source: "test", reason: "later" })
          const live = yield* Fiber.join(waiting)
          return { ids: [...ids, again], firstRun, secondRun, otherReader, late, live }
        }).pipe(Effect.scoped)
      )
      const commandIds = (commands: ReadonlyArray<{ commandId: string }>) => commands.map((command) => command.commandId)
      expect(commandIds(result.firstRun)).toEqual(result.ids.slice(0, 2))
      expect(commandIds(result.secondRun)).toEqual(result.ids.slice(1, 4))
      expect(commandIds(result.otherReader)).toEqual(result.ids)
      expect(result.firstRun[0]).toMatchObject({ command: "pause", reason: "", source: "test" })
      expect(commandIds(result.live)).toEqual([result.late])
      expect(result.live[0].reason).toBe("later")
    }, 20_000)

    it("hands a reader only the commands sent to its own agent, acknowledging the others", async () => {
      // The same task id under two agents: bob's commands (sent before anything was stored) never reach ab's workflow.
      const taskId = uniqueTask()
      const bob = { agentId: "bob", taskId }
      const ab = { agentId: "ab", taskId }
      const result = await run(
        Effect.gen(function*() {
          const queue = yield* ControlQueue
          yield* queue.append(bob, { command: "cancel", source: "test" })
          const own = yield* queue.append(ab, { command: "pause", source: "test" })
          yield* queue.append(bob, { command: "cancel", source: "test" })
          // Waiting for a second command of its own, the reader passes over bob's live one.
          const reading = yield* queue.commands(ab, "workflow").pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
          yield* Effect.sleep("50 millis")
          yield* queue.append(bob, { command: "cancel", source: "test", reason: "bob's" })
          const ownLater = yield* queue.append(ab, { command: "resume", source: "test" })
          const received = yield* Fiber.join(reading)
          // A reader of bob's commands under another name (its own position) gets all of them.
          const bobs = yield* queue.commands(bob, "auditor").pipe(Stream.take(3), Stream.runCollect)
          return { own, ownLater, received, bobs }
        }).pipe(Effect.scoped)
      )
      expect(result.received.map((command) => command.commandId)).toEqual([result.own, result.ownLater])
      expect(result.received.every((command) => command.agentId === "ab")).toBe(true)
      expect(result.bobs.map((command) => command.agentId)).toEqual(["bob", "bob", "bob"])
    }, 20_000)
  })
}
