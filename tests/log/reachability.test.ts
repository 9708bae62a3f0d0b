/** A Redis that does not answer at start is said in the log, until it answers (a real redis-server, stopped then started). */
import { afterAll, describe, expect, it, spyOn } from "bun:test"
import { Effect, Exit, Layer, Scope } from "effect"
import { AppConfig } from "../../src/config.ts"
import { RedisLogLayer } from "../../src/log/RedisEventLog.ts"
import { GatewayMetrics } from "../../src/observability/metrics.ts"
import { eventually } from "../support/ports.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"
import { Registry } from "../../src/events/RegistryService.ts"

describe("Redis reachability in the log [redis log]", () => {
  let redis: RedisServer | undefined
  afterAll(() => redis?.stop())

  it("says at start that Redis does not answer, and says when it answers again", async () => {
    redis = await startRedis()
    await redis.kill()
    const lines: Array<string> = []
    const errors = spyOn(console, "error").mockImplementation((line: unknown) => void lines.push(String(line)))
    const infos = spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(String(line)))
    const scope = Effect.runSync(Scope.make())
    try {
      await Effect.runPromise(
        Layer.buildWithScope(
          RedisLogLayer.pipe(
            Layer.provide(Layer.mergeAll(AppConfig.layerWith({ redis: { kind: "standalone", url: redis.url }, redisCommandTimeoutMs: 300 }), GatewayMetrics.layer, Registry.builtin))
          ),
          scope
        )
      )
      await eventually(() => lines.some((line) => line.includes("redis does not answer; retrying") && line.includes("ECONNREFUSED")), 5000, "the unreachable line")
      await redis.start()
      await eventually(() => lines.some((line) => line.includes("redis answers again")), 10_000, "the recovery line")
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      errors.mockRestore()
      infos.mockRestore()
    }
    expect(lines.filter((line) => line.includes("redis does not answer")).length).toBeGreaterThanOrEqual(1)
  }, 20_000)
})
