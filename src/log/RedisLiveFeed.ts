/**
 * The gateway's live subscription on Redis (SPEC §2, §5): one subscriber
 * connection on a standalone Redis (SUBSCRIBE), one per master on a Redis
 * Cluster (sharded pub/sub, SSUBSCRIBE — ioredis `shardedSubscribers`, which
 * follows slot moves and failovers by re-reading the slot map).
 *
 * After a subscriber connection comes back, the feed subscribes again to every
 * channel still wanted, waits for Redis to confirm, then reports `onResubscribed`
 * so the log can tell every listener to catch up from the log.
 */
import { Effect, type Scope } from "effect"
import type { Cluster, Redis } from "ioredis"
import { connectWithin, createClient, type RedisTarget } from "./redisTarget.ts"

export interface LiveFeedHandlers {
  onMessage(channel: string, message: string): void
  /** The channels local listeners follow now. */
  wanted(): Array<string>
  /** Every wanted channel is subscribed again after a reconnect: events may have been missed meanwhile. */
  onResubscribed(): void
}

export interface LiveFeed {
  /** Resolves once Redis confirmed the subscription, or it failed (a reconnect then resubscribes it and reports). */
  subscribe(channel: string): Promise<void>
  unsubscribe(channel: string): void
}

const settle = (pending: Promise<unknown>): Promise<void> => pending.then(() => undefined, () => undefined)

const standaloneFeed = (client: Redis, handlers: LiveFeedHandlers): LiveFeed => {
  client.on("message", handlers.onMessage)
  let connectedBefore = false
  client.on("ready", () => {
    if (!connectedBefore) {
      connectedBefore = true
      return
    }
    // ioredis resubscribes on its own; subscribing again gives us the moment Redis confirmed it.
    const channels = handlers.wanted()
    settle(channels.length > 0 ? client.subscribe(...channels) : Promise.resolve()).then(handlers.onResubscribed)
  })
  return {
    subscribe: (channel) => settle(client.subscribe(channel)),
    unsubscribe: (channel) => void settle(client.unsubscribe(channel))
  }
}

const clusterFeed = (client: Cluster, handlers: LiveFeedHandlers): LiveFeed => {
  client.on("smessage", handlers.onMessage)
  // Emitted after ioredis rebuilt its per-shard subscribers (first connect, a lost
  // connection, a failover, a slot move) and re-sent SSUBSCRIBE without waiting for
  // the reply. Subscribing again (one channel per command: channels of one call must
  // share a slot) gives the confirmation before listeners read the log.
  client.on("subscribersReady", () => {
    const channels = handlers.wanted()
    if (channels.length === 0) return
    Promise.all(channels.map((channel) => settle(client.ssubscribe(channel)))).then(handlers.onResubscribed)
  })
  return {
    subscribe: (channel) => settle(client.ssubscribe(channel)),
    unsubscribe: (channel) => void settle(client.sunsubscribe(channel))
  }
}

export const makeLiveFeed = (
  target: RedisTarget,
  timeoutMs: number,
  handlers: LiveFeedHandlers
): Effect.Effect<LiveFeed, never, Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => createClient(target, { failFast: false, lazyConnect: true, shardedSubscribers: true, commandTimeoutMs: timeoutMs })),
      (client) => Effect.sync(() => client.disconnect())
    )
    client.on("error", () => {})
    const feed = target.kind === "cluster" ? clusterFeed(client as Cluster, handlers) : standaloneFeed(client as Redis, handlers)
    yield* connectWithin(client, timeoutMs)
    return feed
  })
