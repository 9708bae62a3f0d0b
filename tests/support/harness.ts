/**
 * A gateway per log kind and runtime for a test file: memory, or Redis on the
 * test's own redis-server; under Bun or Deno. `describeEachLog` runs one suite
 * against every pair.
 */
import { afterAll, beforeAll, describe } from "bun:test"
import { type Gateway, type LogKind, RUNTIMES, type RuntimeName, startGateway } from "./gateway.ts"
import { type RedisServer, startRedis } from "./redis.ts"

export interface Harness {
  readonly kind: LogKind
  readonly runtime: RuntimeName
  readonly url: string
  readonly gateway: Gateway
  /** The test's redis-server (redis kind only). */
  readonly redis: RedisServer | undefined
}

export const LOG_KINDS: ReadonlyArray<LogKind> = ["memory", "redis"]

export const startHarness = async (kind: LogKind, env: Record<string, string> = {}, runtime: RuntimeName = "bun") => {
  const redis = kind === "redis" ? await startRedis() : undefined
  const gateway = await startGateway({ ...env, ...(redis === undefined ? {} : { REDIS_URL: redis.url }) }, runtime)
  return {
    harness: { kind, runtime, url: gateway.url, gateway, redis } satisfies Harness,
    stop: async () => {
      await gateway.stop()
      await redis?.stop()
    }
  }
}

/** Start a harness for the enclosing `describe` (stopped after it); returns its accessor. */
export const useHarness = (kind: LogKind, env: Record<string, string> = {}, runtime: RuntimeName = "bun"): (() => Harness) => {
  let current: Awaited<ReturnType<typeof startHarness>> | undefined
  beforeAll(async () => {
    current = await startHarness(kind, env, runtime)
  })
  afterAll(async () => {
    await current?.stop()
  })
  return () => current!.harness
}

/** Run `suite` once per runtime and log kind (`SSE stream [deno, redis log]`), each with its own gateway started with `env`. */
export const describeEachLog = (name: string, env: Record<string, string>, suite: (h: () => Harness) => void) => {
  for (const runtime of RUNTIMES) {
    for (const kind of LOG_KINDS) {
      describe(`${name} [${runtime}, ${kind} log]`, () => suite(useHarness(kind, env, runtime)))
    }
  }
}

/** Run `suite` once per runtime (`Graceful drain [deno]`); the suite starts what it needs for `runtime`. */
export const describeEachRuntime = (name: string, suite: (runtime: RuntimeName) => void) => {
  for (const runtime of RUNTIMES) describe(`${name} [${runtime}]`, () => suite(runtime))
}

let counter = 0
/** A task id unique within the test run. */
export const uniqueTask = (label = "task") => `${label}-${Date.now().toString(36)}-${(counter++).toString(36)}`
