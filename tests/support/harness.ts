/**
 * A gateway per log kind and runtime for a test file: memory, Redis on the
 * test's own redis-server, or the test's own 3-master Redis Cluster; under Bun
 * or Deno. `describeEachLog` runs one suite against each pair it is given.
 */
import { afterAll, beforeAll, describe } from "bun:test"
import { type Gateway, type LogKind, RUNTIMES, type RuntimeName, startGateway } from "./gateway.ts"
import { type RedisServer, startRedis } from "./redis.ts"
import { CLUSTER_START_MS, type RedisClusterServer, startRedisCluster } from "./redisCluster.ts"

export interface Harness {
  readonly kind: LogKind
  readonly runtime: RuntimeName
  readonly url: string
  readonly gateway: Gateway
  /** The test's redis-server (redis kind only). */
  readonly redis: RedisServer | undefined
  /** The test's Redis Cluster (cluster kind only). */
  readonly cluster: RedisClusterServer | undefined
}

export const LOG_KINDS: ReadonlyArray<LogKind> = ["memory", "redis"]
/** Every kind, Redis Cluster included: for the suites that must also hold on a cluster. */
export const ALL_LOG_KINDS: ReadonlyArray<LogKind> = ["memory", "redis", "cluster"]

export const startHarness = async (kind: LogKind, env: Record<string, string> = {}, runtime: RuntimeName = "bun") => {
  const redis = kind === "redis" ? await startRedis() : undefined
  const cluster = kind === "cluster" ? await startRedisCluster() : undefined
  const redisUrl = redis?.url ?? cluster?.url
  const gateway = await startGateway({ ...env, ...(redisUrl === undefined ? {} : { REDIS_URL: redisUrl }) }, runtime)
  return {
    harness: { kind, runtime, url: gateway.url, gateway, redis, cluster } satisfies Harness,
    stop: async () => {
      await gateway.stop()
      await redis?.stop()
      await cluster?.stop()
    }
  }
}

/** Start a harness for the enclosing `describe` (stopped after it); returns its accessor. */
export const useHarness = (kind: LogKind, env: Record<string, string> = {}, runtime: RuntimeName = "bun"): (() => Harness) => {
  let current: Awaited<ReturnType<typeof startHarness>> | undefined
  beforeAll(async () => {
    current = await startHarness(kind, env, runtime)
  }, CLUSTER_START_MS)
  afterAll(async () => {
    await current?.stop()
  })
  return () => current!.harness
}

/**
 * Run `suite` once per runtime and log kind (`SSE stream [deno, redis log]`),
 * each with its own gateway started with `env`. A Redis Cluster runs under
 * Bun only: the cluster is the log's concern, not the runtime's, and takes
 * seconds to start.
 */
export const describeEachLog = (
  name: string,
  env: Record<string, string>,
  suite: (h: () => Harness) => void,
  kinds: ReadonlyArray<LogKind> = LOG_KINDS
) => {
  for (const runtime of RUNTIMES) {
    for (const kind of kinds) {
      if (kind === "cluster" && runtime !== "bun") continue
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
