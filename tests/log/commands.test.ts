import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { Effect, Fiber, Layer, Stream } from "effect"
import { AppConfig } from "../../src/config.ts"
import { EventLog } from "../../src/log/EventLog.ts"
import { MemoryEventLogLayer } from "../../src/log/MemoryEventLog.ts"
import { RedisEventLogLayer } from "../../src/log/RedisEventLog.ts"
import { LOG_KINDS, uniqueTask } from "../support/harness.ts"
import { startRedis, type RedisServer } from "../support/redis.ts"

for (const kind of LOG_KINDS) {
  describe(`EventLog control commands [${kind} log]`, () => {
    let redis: RedisServer | undefined
    beforeAll(async () => {
      if (kind === "redis") redis = await startRedis()
    })
    afterAll(() => redis?.stop())

    const run = <A>(program: Effect.Effect<A, unknown, EventLog>) => {
      const layer = (kind === "memory" ? MemoryEventLogLayer : RedisEventLogLayer).pipe(
        Layer.provide(AppConfig.layerWith({ redisUrl: redis?.url }))
      )
      return Effect.runPromise(program.pipe(Effect.provide(layer)) as Effect.Effect<A>)
    }

    it("hands a reader its unacknowledged commands first, then new ones, and remembers acknowledgements", async () => {
      const taskId = uniqueTask()
      const result = await run(
        Effect.gen(function*() {
          const log = yield* EventLog
          const ids: Array<string> = []
          for (const command of ["pause", "resume", "cancel"] as const) ids.push(yield* log.appendCommand(taskId, { command, source: "test" }))
          const again = yield* log.appendCommand(taskId, { command: "pause", source: "test", idempotencyKey: "k" })
          expect(yield* log.appendCommand(taskId, { command: "cancel", source: "test", idempotencyKey: "k" })).toBe(again)
          const firstRun = yield* log.commands(taskId, "worker").pipe(Stream.take(2), Stream.runCollect)
          yield* log.ackCommand(taskId, "worker", firstRun[0].id)
          const secondRun = yield* log.commands(taskId, "worker").pipe(Stream.take(3), Stream.runCollect)
          const otherReader = yield* log.commands(taskId, "auditor").pipe(Stream.take(4), Stream.runCollect)
          // A command queued while the reader waits arrives live.
          const waiting = yield* log.commands(taskId, "auditor").pipe(Stream.drop(4), Stream.take(1), Stream.runCollect, Effect.forkChild)
          yield* Effect.sleep("50 millis")
          const late = yield* log.appendCommand(taskId, { command: "resume", source: "test", reason: "later" })
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
  })
}
