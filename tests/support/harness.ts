/**
 * A gateway per log kind for a test file: memory, Redis on the test's own
 * redis-server, or the test's own 3-master Redis Cluster. `describeEachLog`
 * runs one suite against each kind it is given.
 */
import { afterAll, beforeAll, describe } from "bun:test"
import { type Gateway, type LogKind, startGateway } from "./gateway.ts"
import { type RedisServer, startRedis } from "./redis.ts"
import { CLUSTER_START_MS, type RedisClusterServer, startRedisCluster } from "./redisCluster.ts"

export interface Harness {
  readonly kind: LogKind
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

export const startHarness = async (kind: LogKind, env: Record<string, string> = {}) => {
  const redis = kind === "redis" ? await startRedis() : undefined
  const cluster = kind === "cluster" ? await startRedisCluster() : undefined
  const redisUrl = redis?.url ?? cluster?.url
  const gateway = await startGateway({ ...env, ...(redisUrl === undefined ? {} : { REDIS_URL: redisUrl }) })
  return {
    harness: { kind, url: gateway.url, gateway, redis, cluster } satisfies Harness,
    stop: async () => {
      await gateway.stop()
      await redis?.stop()
      await cluster?.stop()
    }
  }
}

/** Start a harness for the enclosing `describe` (stopped after it); returns its accessor. */
export const useHarness = (kind: LogKind, env: Record<string, string> = {}): (() => Harness) => {
  let current: Awaited<ReturnType<typeof startHarness>> | undefined
  beforeAll(async () => {
    current = await startHarness(kind, env)
  }, CLUSTER_START_MS)
  afterAll(async () => {
    await current?.stop()
  })
  return () => current!.harness
}

/** Run `suite` once per log kind, each with its own gateway started with `env`. */
export const describeEachLog = (
  name: string,
  env: Record<string, string>,
  suite: (h: () => Harness) => void,
  kinds: ReadonlyArray<LogKind> = LOG_KINDS
) => {
  for (const kind of kinds) {
    describe(`${name} [${kind} log]`, () => suite(useHarness(kind, env)))
  }
}

let counter = 0
/** A task id unique within the test run. */
export const uniqueTask = (label = "task") => `${label}-${Date.now().toString(36)}-${(counter++).toString(36)}`
