/**
 * Runs a log service's contract suite against every log layer: memory, Redis
 * on a real redis-server, and a real Redis Cluster. Each service's suite
 * (tests/log/*.test.ts) reads the services it checks from `log`.
 */
import { afterAll, beforeAll, describe } from "bun:test"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { AppConfig, type Settings } from "../../src/config.ts"
import type { EventDraft } from "../../src/events/draft.ts"
import type { EventId, LogEvent } from "../../src/events/envelope.ts"
import { ControlQueue } from "../../src/log/ControlQueue.ts"
import { EventLog } from "../../src/log/EventLog.ts"
import { LiveFeed, type LiveListener } from "../../src/log/LiveFeed.ts"
import type { LogServices } from "../../src/log/LogServices.ts"
import { MemoryLogLayer } from "../../src/log/MemoryEventLog.ts"
import { RedisLogLayer } from "../../src/log/RedisEventLog.ts"
import { parseRedisUrl, type RedisTarget } from "../../src/redisUrl.ts"
import { TaskIndex } from "../../src/log/TaskIndex.ts"
import { GatewayMetrics } from "../../src/observability/metrics.ts"
import { startRedis } from "./redis.ts"
import { CLUSTER_START_MS, startRedisCluster } from "./redisCluster.ts"
import { Registry } from "../../src/events/RegistryService.ts"

export const HISTORY_MAX = 10
export const TASK_INDEX_MAX = 5

export const draft = (type: EventDraft["type"], data: Record<string, unknown>, idempotencyKey?: string): EventDraft => ({
  type,
  data,
  dataJson: JSON.stringify(data),
  ...(idempotencyKey === undefined ? {} : { idempotencyKey })
})
export const step = (n: number, idempotencyKey?: string): EventDraft => draft("WorkflowStepStarted", { step: n }, idempotencyKey)

/** A listener that keeps what it gets, and the `prev` the feed gave beside each event. */
export const recorder = () => {
  const events: Array<LogEvent> = []
  const prevs: Array<EventId | undefined> = []
  let gaps = 0
  const listener: LiveListener = {
    onEvent: (event, prev) => {
      events.push(event)
      prevs.push(prev)
    },
    onGap: () => void gaps++
  }
  return { events, prevs, listener, gaps: () => gaps }
}

export const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

interface Started {
  readonly stop: () => Promise<void>
  readonly target: RedisTarget | undefined
}

const servers: Record<"memory" | "redis" | "redis cluster", () => Promise<Started>> = {
  memory: () => Promise.resolve({ stop: async () => {}, target: undefined }),
  redis: async () => {
    const server = await startRedis()
    return { stop: () => server.stop(), target: parseRedisUrl(server.url) as RedisTarget }
  },
  "redis cluster": async () => {
    const cluster = await startRedisCluster()
    return { stop: () => cluster.stop(), target: parseRedisUrl(cluster.url) as RedisTarget }
  }
}

export type LogKindName = keyof typeof servers

export interface LogUnderTest {
  readonly kind: LogKindName
  /** The Redis the log runs on; undefined for the memory log. */
  readonly target: () => RedisTarget | undefined
  readonly log: () => EventLog["Service"]
  readonly feed: () => LiveFeed["Service"]
  readonly index: () => TaskIndex["Service"]
  readonly control: () => ControlQueue["Service"]
}

/** `describe` `title` once per log layer, with the services built once for the block. */
export const describeEachLog = (
  title: string,
  body: (under: LogUnderTest) => void,
  options: { readonly kinds?: ReadonlyArray<LogKindName>; readonly config?: Partial<Settings> } = {}
) => {
  for (const kind of options.kinds ?? (Object.keys(servers) as Array<LogKindName>)) {
    describe(`${title} [${kind}]`, () => {
      let services: Context.Context<LogServices>
      let scope: Scope.Closeable
      let started: Started
      beforeAll(async () => {
        started = await servers[kind]()
        scope = Effect.runSync(Scope.make())
        const config = AppConfig.layerWith({
          redis: started.target,
          historyMax: HISTORY_MAX,
          taskIndexMax: TASK_INDEX_MAX,
          inflightSeconds: 1,
          ...options.config
        })
        const layer = started.target === undefined ? MemoryLogLayer : RedisLogLayer
        services = await Effect.runPromise(Layer.buildWithScope(Layer.provide(layer, Layer.mergeAll(config, GatewayMetrics.layer, Registry.layerOf(options.config?.eventTypes ?? new Map()))), scope))
      }, CLUSTER_START_MS)
      afterAll(async () => {
        await Effect.runPromise(Scope.close(scope, Exit.void))
        await started.stop()
      })
      body({
        kind,
        target: () => started.target,
        log: () => Context.get(services, EventLog),
        feed: () => Context.get(services, LiveFeed),
        index: () => Context.get(services, TaskIndex),
        control: () => Context.get(services, ControlQueue)
      })
    })
  }
}
