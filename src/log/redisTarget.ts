/**
 * The ioredis clients for a Redis target (parsed from the config by
 * src/redisUrl.ts): the gateway and the publisher SDK build their connections
 * here.
 */
import { Effect } from "effect"
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis"
import type { LogLine } from "../observability/log.ts"
import type { RedisTarget } from "../redisUrl.ts"

/** Either client: a task's keys share one slot, so every command the log sends works on both. */
export type RedisClient = Redis | Cluster

/** Reconnect forever, backing off to 2 s: the gateway outlives Redis outages. */
const backoff = (attempt: number) => Math.min(attempt * 100, 2000)

/** Clients closed on purpose (`closing`): not brought back. */
const closed = new WeakSet<RedisClient>()

/** Mark `client` as closed on purpose, before its `quit()` or `disconnect()`. */
export const closing = <C extends RedisClient>(client: C): C => {
  closed.add(client)
  return client
}

/** Close `client` for good: QUIT (what is pending goes out first), or drop the connection when that fails. */
export const closeClient = (client: RedisClient): Promise<void> =>
  closing(client).quit().then(() => undefined, () => client.disconnect())

const REVIVE_MS = 250

/**
 * ioredis 6 gives a Sentinel client up for good (status "end", no more
 * attempts) when its failover detector — a sentinel announcing
 * +switch-master — disconnects it while a reconnect is already asking the
 * sentinels for the master: the connect in flight fails with "Connection is
 * closed." and the client ends. Seen under load when the master is killed
 * (its socket drops, the client starts reconnecting, the promotion is
 * announced): the gateway answered 503 until restarted. Bring such a client
 * back, unless the gateway closed it.
 */
const revived = (client: Redis): Redis => {
  client.on("end", () => {
    if (closed.has(client)) return
    setTimeout(() => {
      if (!closed.has(client) && client.status === "end") client.connect().catch(() => {})
    }, REVIVE_MS)
  })
  return client
}

export interface ClientOptions {
  /** Fail commands at once while Redis is away (the gateway answers 503) instead of queueing them. */
  readonly failFast: boolean
  readonly commandTimeoutMs?: number
  /** For Cluster: one subscriber connection per master for SSUBSCRIBE (sharded pub/sub). */
  readonly shardedSubscribers?: boolean
  readonly lazyConnect?: boolean
  /**
   * Send the commands issued in one event-loop turn as one write (ioredis's auto-pipelining):
   * for a connection that many concurrent requests share, one write per turn instead of one per
   * command — what a burst of clients opening streams (a head, a history page and the calls in
   * flight each) or of concurrent appends costs in syscalls. Standalone and Sentinel only.
   */
  readonly autoPipelining?: boolean
}

export const createClient = (target: RedisTarget, options: ClientOptions): RedisClient => {
  const failFast: RedisOptions = options.failFast
    ? { maxRetriesPerRequest: 0, ...(options.commandTimeoutMs === undefined ? {} : { commandTimeout: options.commandTimeoutMs }) }
    : {}
  const standalone: RedisOptions = {
    retryStrategy: backoff,
    lazyConnect: options.lazyConnect ?? false,
    enableOfflineQueue: !options.failFast,
    enableAutoPipelining: options.autoPipelining ?? false,
    ...(options.commandTimeoutMs === undefined ? {} : { connectTimeout: options.commandTimeoutMs }),
    ...failFast
  }
  if (target.kind === "standalone") return new Redis(target.url, standalone)
  if (target.kind === "sentinel") {
    return revived(new Redis({
      ...standalone,
      sentinels: target.sentinels.map((node) => ({ host: node.host, port: node.port })),
      name: target.name,
      ...(target.username === undefined ? {} : { username: target.username }),
      ...(target.password === undefined ? {} : { password: target.password }),
      ...(target.sentinelUsername === undefined ? {} : { sentinelUsername: target.sentinelUsername }),
      ...(target.sentinelPassword === undefined ? {} : { sentinelPassword: target.sentinelPassword }),
      ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
      sentinelRetryStrategy: backoff,
      // Reconnect as soon as a sentinel announces +switch-master, not when the old master's socket dies.
      failoverDetector: true,
      // A master demoted under a live connection answers writes READONLY: reconnect, which asks the sentinels anew.
      reconnectOnError: (error) => error.message.startsWith("READONLY")
    }))
  }
  const clusterOptions: ClusterOptions = {
    clusterRetryStrategy: backoff,
    lazyConnect: options.lazyConnect ?? false,
    enableOfflineQueue: !options.failFast,
    // Not on a Cluster: with ioredis 6's auto-pipelining there, the gateway's reads answered
    // errors (history 503 log_unavailable in tests/http/sse.test.ts's cluster suite); a Cluster
    // spreads the load over its masters anyway.
    shardedSubscribers: options.shardedSubscribers ?? false,
    // Follow a failover quickly: re-read the slot map soon after a node goes away.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    slotsRefreshTimeout: 2000,
    redisOptions: {
      ...(options.commandTimeoutMs === undefined ? {} : { connectTimeout: options.commandTimeoutMs }),
      ...failFast,
      ...(target.username === undefined ? {} : { username: target.username }),
      ...(target.password === undefined ? {} : { password: target.password }),
      ...(target.tls ? { tls: {} } : {})
    }
  }
  return new Cluster(target.nodes.map((node) => ({ host: node.host, port: node.port })), clusterOptions)
}

export const isCluster = (client: RedisClient): client is Cluster => client instanceof Cluster

/** How often an unreachable Redis is reported again while it stays away. */
const UNREACHABLE_REPORT_MS = 10_000

/**
 * Say in the log when Redis does not answer — at start as later — and keep
 * saying it (every 10 s) until it does, then say that it answers again.
 */
export const reportReachability = (client: RedisClient, role: string, logLine: LogLine): void => {
  let downSince: number | undefined
  let reportedAt = 0
  client.on("error", (error: Error) => {
    const now = Date.now()
    downSince ??= now
    if (now - reportedAt < UNREACHABLE_REPORT_MS) return
    reportedAt = now
    logLine("error", "redis does not answer; retrying", { role, error: error.message, downForS: Math.round((now - downSince) / 1000) })
  })
  client.on("ready", () => {
    if (downSince === undefined) return
    logLine("info", "redis answers again", { role, downForS: Math.round((Date.now() - downSince) / 1000) })
    downSince = undefined
    reportedAt = 0
  })
}

/**
 * With REDIS_WAIT_REPLICAS, warn when the master takes writes without a replica
 * (`min-replicas-to-write` 0, Redis's default, or `min-replicas-max-lag` 0, which turns it off):
 * in a failover the old master then keeps storing, and publishing live, the appends of clients
 * still connected to it until they switch. Those events are never acknowledged and vanish with the
 * old master's data, but the clients that got one live are past it, and skip the acknowledged
 * events the new master stored before it (seen in the chaos run). Asked on every connection (after
 * a failover it is another node), said once. Not on a Cluster (WAIT is refused there); a server
 * that refuses CONFIG (a managed Redis) is not judged.
 */
export const watchMinReplicas = (client: RedisClient, waitReplicas: number, logLine: LogLine): void => {
  if (waitReplicas <= 0 || isCluster(client)) return
  let warned = false
  client.on("ready", async () => {
    if (warned) return
    const settings = await minReplicasSettings(client)
    if (warned || settings === undefined || (settings.toWrite >= 1 && settings.maxLag >= 1)) return
    warned = true
    logLine(
      "warn",
      "REDIS_WAIT_REPLICAS is set but the Redis master takes writes without a replica: set min-replicas-to-write 1 and min-replicas-max-lag (e.g. 2) on the data nodes, or a failover can make clients skip acknowledged events (docs/deploy.md)",
      { minReplicasToWrite: settings.toWrite, minReplicasMaxLag: settings.maxLag }
    )
  })
}

/** The server's `min-replicas-to-write` and `min-replicas-max-lag`; undefined when it does not say (CONFIG refused, no connection). */
export const minReplicasSettings = async (client: RedisClient): Promise<{ toWrite: number; maxLag: number } | undefined> => {
  const reply = await client.call("CONFIG", "GET", "min-replicas-to-write", "min-replicas-max-lag").catch(() => undefined)
  if (!Array.isArray(reply)) return undefined
  const values = new Map<string, number>()
  for (let i = 0; i + 1 < reply.length; i += 2) values.set(String(reply[i]), Number(reply[i + 1]))
  const toWrite = values.get("min-replicas-to-write")
  const maxLag = values.get("min-replicas-max-lag")
  return toWrite === undefined || maxLag === undefined ? undefined : { toWrite, maxLag }
}

/** Wait for the first connection, but go on after `timeoutMs` anyway: the client keeps reconnecting. */
export const connectWithin = (client: RedisClient, timeoutMs: number): Effect.Effect<void> =>
  Effect.promise(() =>
    Promise.race([
      client.connect().then(() => undefined, () => undefined),
      new Promise<void>((resolve) => setTimeout(resolve, timeoutMs))
    ])
  )

/**
 * Another connection like `client`, for blocking reads (XREADGROUP BLOCK): it
 * holds its connection while it waits, so it gets its own, which queues
 * commands through outages and has no command timeout.
 */
export const blockingDuplicate = (client: RedisClient): RedisClient =>
  isCluster(client)
    ? client.duplicate(undefined, {
      enableOfflineQueue: true,
      redisOptions: { ...client.options.redisOptions, maxRetriesPerRequest: null, commandTimeout: undefined }
    })
    // Not auto-pipelined: a command behind a blocking read would wait for it.
    : withRevival(client, client.duplicate({ enableOfflineQueue: true, enableAutoPipelining: false, maxRetriesPerRequest: null, commandTimeout: undefined }))

/** A duplicate of a Sentinel client is brought back as its original is. */
const withRevival = (original: Redis, duplicate: Redis): Redis => (original.options.sentinels ? revived(duplicate) : duplicate)
