/**
 * A gateway per log kind for a test file: memory, or Redis on the test's own
 * redis-server. `describeEachLog` runs one suite against both.
 */
import { afterAll, beforeAll, describe } from "bun:test"
import { type Gateway, type LogKind, startGateway } from "./gateway.ts"
import { type RedisServer, startRedis } from "./redis.ts"

export interface Harness {
  readonly kind: LogKind
  readonly url: string
  readonly gateway: Gateway
  /** The test's redis-server (redis kind only). */
  readonly redis: RedisServer | undefined
}

export const LOG_KINDS: ReadonlyArray<LogKind> = ["memory", "redis"]

export const startHarness = async (kind: LogKind, env: Record<string, string> = {}) => {
  const redis = kind === "redis" ? await startRedis() : undefined
  const gateway = await startGateway({ ...env, ...(redis === undefined ? {} : { REDIS_URL: redis.url }) })
  return {
    harness: { kind, url: gateway.url, gateway, redis } satisfies Harness,
    stop: async () => {
      await gateway.stop()
      await redis?.stop()
    }
  }
}

/** Start a harness for the enclosing `describe` (stopped after it); returns its accessor. */
export const useHarness = (kind: LogKind, env: Record<string, string> = {}): (() => Harness) => {
  let current: Awaited<ReturnType<typeof startHarness>> | undefined
  beforeAll(async () => {
    current = await startHarness(kind, env)
  })
  afterAll(async () => {
    await current?.stop()
  })
  return () => current!.harness
}

/** Run `suite` once per log kind, each with its own gateway started with `env`. */
export const describeEachLog = (name: string, env: Record<string, string>, suite: (h: () => Harness) => void) => {
  for (const kind of LOG_KINDS) {
    describe(`${name} [${kind} log]`, () => suite(useHarness(kind, env)))
  }
}

let counter = 0
/** A task id unique within the test run. */
export const uniqueTask = (label = "task") => `${label}-${Date.now().toString(36)}-${(counter++).toString(36)}`
