/**
 * The gateway's live subscription on Redis (SPEC §2, §5): one subscriber
 * connection on a standalone Redis (SUBSCRIBE), one per master on a Redis
 * Cluster (sharded pub/sub, SSUBSCRIBE — ioredis `shardedSubscribers`, which
 * follows slot moves and failovers by re-reading the slot map).
 *
 * After a subscriber connection comes back, the feed subscribes again to every
 * channel still wanted, waits for Redis to confirm, then reports `onResubscribed`
 * so the log can tell every listener to catch up from the log.
 *
 * A subscription Redis refuses (an ACL without the channel's permission, a
 * shard that is down) is not silent: it is logged, counted, makes the log
 * unready (`failing`) and is retried with back-off while the channel is still
 * wanted; once it succeeds, `onRestored` lets that task's listeners catch up.
 */
import { Effect, type Scope } from "effect"
import { type Cluster, type Redis, ReplyError } from "ioredis"
import { GatewayLog } from "../observability/log.ts"
import { Metrics, type MetricsRecorder } from "../observability/metrics.ts"
import { closing, connectWithin, createClient } from "./redisTarget.ts"
import { type RedisTarget } from "../redisUrl.ts"

export interface LiveFeedHandlers {
  onMessage(channel: string, message: string): void
  /** The channels local listeners follow now. */
  wanted(): Array<string>
  /** Whether local listeners follow `channel` now. */
  wants(channel: string): boolean
  /** Every wanted channel is subscribed again after a reconnect: events may have been missed meanwhile. */
  onResubscribed(): void
  /** A channel whose subscription had failed is subscribed at last: its listeners may have missed events. */
  onRestored(channel: string): void
}

export interface LiveFeed {
  /** Resolves once Redis confirmed the subscription, or refused it (it is then retried, and `failing` says so). */
  subscribe(channel: string): Promise<void>
  unsubscribe(channel: string): void
  /** The wanted channels Redis refused to subscribe, with its last error; empty when all is well. */
  failing(): ReadonlyMap<string, string>
}

/** Retries of a refused subscription: 200 ms, doubled up to 5 s. */
const RETRY_MIN_MS = 200
const RETRY_MAX_MS = 5000

const settle = (pending: Promise<unknown>): Promise<void> => pending.then(() => undefined, () => undefined)

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

interface Subscriber {
  /** Subscribe one channel on its own (rejects when Redis refuses): retries and fallbacks. */
  one(channel: string): Promise<unknown>
  /** Subscribe a channel a listener just opened, with the others of this turn (rejects when Redis refuses it). */
  queued(channel: string): Promise<unknown>
  /** Subscribe all of `channels` again after a reconnect (rejects when Redis refuses any). */
  all(channels: Array<string>): Promise<unknown>
  unsubscribe(channel: string): Promise<unknown>
}

interface Change {
  readonly subscribe: boolean
  readonly channel: string
  readonly settle: (outcome: Promise<unknown>) => void
}

/**
 * The (un)subscribes asked for in one event-loop turn, sent in their order, each run of the
 * same kind as one command: a burst of 10 000 clients opening new tasks is a few SUBSCRIBE
 * commands on the subscriber connection, not 10 000 (each its own command, reply and write).
 * The order is kept, so a channel left and taken again in one turn ends up subscribed. When
 * Redis refuses a SUBSCRIBE of several channels (an ACL denying one of them refuses them all),
 * each channel still wanted is asked for on its own, so only the refused ones fail; any other
 * failure (the connection lost) fails them all, and the feed retries them.
 */
class SubscriptionQueue {
  private queued: Array<Change> = []

  constructor(private readonly client: Redis, private readonly wants: (channel: string) => boolean) {}

  add(subscribe: boolean, channel: string): Promise<unknown> {
    if (this.queued.length === 0) setImmediate(this.flush)
    return new Promise((resolve, reject) => {
      this.queued.push({ subscribe, channel, settle: (outcome) => void outcome.then(resolve, reject) })
    })
  }

  private readonly flush = (): void => {
    const changes = this.queued
    this.queued = []
    for (let start = 0; start < changes.length;) {
      let end = start + 1
      while (end < changes.length && changes[end].subscribe === changes[start].subscribe) end++
      this.send(changes.slice(start, end))
      start = end
    }
  }

  private send(run: Array<Change>): void {
    const channels = run.map((change) => change.channel)
    const sent = run[0].subscribe ? this.client.subscribe(...channels) : this.client.unsubscribe(...channels)
    if (!run[0].subscribe || run.length === 1) {
      for (const change of run) change.settle(sent)
      return
    }
    sent.then(
      () => run.forEach((change) => change.settle(sent)),
      (error: unknown) => {
        const refused = error instanceof ReplyError
        for (const change of run) change.settle(refused && this.wants(change.channel) ? this.client.subscribe(change.channel) : sent)
      }
    )
  }
}

const standalone = (client: Redis, handlers: LiveFeedHandlers, resubscribe: () => void): Subscriber => {
  client.on("message", handlers.onMessage)
  let connectedBefore = false
  client.on("ready", () => {
    if (!connectedBefore) {
      connectedBefore = true
      return
    }
    resubscribe()
  })
  const changes = new SubscriptionQueue(client, (channel) => handlers.wants(channel))
  return {
    one: (channel) => client.subscribe(channel),
    queued: (channel) => changes.add(true, channel),
    // ioredis resubscribes on its own; subscribing again gives us the moment Redis confirmed it.
    all: (channels) => client.subscribe(...channels),
    unsubscribe: (channel) => changes.add(false, channel)
  }
}

const cluster = (client: Cluster, handlers: LiveFeedHandlers, resubscribe: () => void): Subscriber => {
  client.on("smessage", handlers.onMessage)
  // Emitted after ioredis rebuilt its per-shard subscribers (first connect, a lost
  // connection, a failover, a slot move) and re-sent SSUBSCRIBE without waiting for
  // the reply. Subscribing again gives the confirmation before listeners read the log.
  client.on("subscribersReady", resubscribe)
  return {
    // One channel per command, queued ones too: the channels of one SSUBSCRIBE must share a slot.
    one: (channel) => client.ssubscribe(channel),
    queued: (channel) => client.ssubscribe(channel),
    all: (channels) => Promise.all(channels.map((channel) => client.ssubscribe(channel))),
    unsubscribe: (channel) => client.sunsubscribe(channel)
  }
}

export const makeLiveFeed = (
  target: RedisTarget,
  timeoutMs: number,
  metrics: MetricsRecorder,
  handlers: LiveFeedHandlers
): Effect.Effect<LiveFeed, never, Scope.Scope> =>
  Effect.gen(function*() {
    const logLine = yield* GatewayLog
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => createClient(target, { failFast: false, lazyConnect: true, shardedSubscribers: true, commandTimeoutMs: timeoutMs })),
      (client) => Effect.sync(() => closing(client).disconnect())
    )
    client.on("error", () => {})
    /** Refused channels: the last error, and the pending retry. */
    const failing = new Map<string, { error: string; delayMs: number; timer: ReturnType<typeof setTimeout> | undefined }>()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const entry of failing.values()) clearTimeout(entry.timer)
        failing.clear()
      })
    )

    const refused = (channel: string, error: unknown) => {
      if (!handlers.wants(channel)) return
      const known = failing.get(channel)
      const delayMs = known === undefined ? RETRY_MIN_MS : Math.min(known.delayMs * 2, RETRY_MAX_MS)
      metrics.record(Metrics.redisSubscribeFailures, 1)
      if (known === undefined) {
        logLine("error", "redis refused a live subscription; its clients get history but no live events until a retry succeeds", {
          channel,
          error: messageOf(error)
        })
      }
      clearTimeout(known?.timer)
      failing.set(channel, { error: messageOf(error), delayMs, timer: setTimeout(() => attempt(channel, true), delayMs) })
    }

    /** Subscribe `channel` (`alone`: not with the others of this turn); resolves after this attempt, whatever its outcome. */
    const attempt = (channel: string, alone: boolean): Promise<void> =>
      (alone ? subscriber.one(channel) : subscriber.queued(channel)).then(
        () => {
          const known = failing.get(channel)
          if (known === undefined) return
          clearTimeout(known.timer)
          failing.delete(channel)
          logLine("info", "redis live subscription restored; its clients catch up from the log", { channel })
          handlers.onRestored(channel)
        },
        (error) => refused(channel, error)
      )

    const resubscribe = () => {
      const channels = handlers.wanted()
      if (channels.length === 0) return
      // Redis refusing some: subscribe them one by one, so the others are confirmed and the refused retried.
      subscriber.all(channels).catch(() => Promise.all(channels.map((channel) => attempt(channel, true)))).then(handlers.onResubscribed, handlers.onResubscribed)
    }

    const subscriber = target.kind === "cluster"
      ? cluster(client as Cluster, handlers, resubscribe)
      : standalone(client as Redis, handlers, resubscribe)
    yield* connectWithin(client, timeoutMs)
    return {
      subscribe: (channel) => attempt(channel, false),
      unsubscribe: (channel) => {
        const known = failing.get(channel)
        if (known !== undefined) {
          clearTimeout(known.timer)
          failing.delete(channel)
        }
        void settle(subscriber.unsubscribe(channel))
      },
      failing: () => new Map([...failing].map(([channel, { error }]) => [channel, error]))
    }
  })
