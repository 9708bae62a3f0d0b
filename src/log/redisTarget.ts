/**
 * Where the Redis log lives (SPEC §1, §5): one standalone server or a Redis
 * Cluster, and the ioredis clients for it. Parsing is pure so the config can
 * validate `REDIS_URL` / `REDIS_CLUSTER_NODES` at start-up; the gateway and the
 * publisher SDK build their connections here.
 *
 * Accepted forms:
 *   redis://[user:password@]host:port[/db]         standalone (rediss:// for TLS)
 *   redis+cluster://[user:password@]host:port[,host:port…]   Cluster seed nodes (rediss+cluster:// for TLS)
 *   REDIS_CLUSTER_NODES=host:port[,host:port…]     Cluster seed nodes without credentials
 *   redis+sentinel://[user:password@]host:port[,host:port…]/<master-name>[?sentinel_username=…&sentinel_password=…]
 *       Redis Sentinel (SPEC §11; rediss+sentinel:// for TLS to Redis and the sentinels): the user and
 *       password are Redis's, the query parameters the sentinels' own when they require auth
 */
import { Effect } from "effect"
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis"
import { logLine } from "../observability/log.ts"

export interface ClusterNodeAddress {
  readonly host: string
  readonly port: number
}

export type RedisTarget =
  | { readonly kind: "standalone"; readonly url: string }
  | {
    readonly kind: "sentinel"
    readonly sentinels: ReadonlyArray<ClusterNodeAddress>
    /** The master group name the sentinels monitor. */
    readonly name: string
    readonly username?: string | undefined
    readonly password?: string | undefined
    readonly sentinelUsername?: string | undefined
    readonly sentinelPassword?: string | undefined
    readonly tls: boolean
  }
  | {
    readonly kind: "cluster"
    readonly nodes: ReadonlyArray<ClusterNodeAddress>
    readonly username?: string | undefined
    readonly password?: string | undefined
    readonly tls: boolean
  }

/** Either client: a task's keys share one slot, so every command the log sends works on both. */
export type RedisClient = Redis | Cluster

/** Redis's default `databases`. */
const DATABASES = 16

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^@/]+?)\/?$/
const SENTINEL_URL = /^(rediss?)\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^@/]+)\/([^/?#]+)(?:\?([^#]*))?$/
const SENTINEL_PARAMS = new Set(["sentinel_username", "sentinel_password"])

const decodePart = (part: string | undefined) => (part === undefined || part === "" ? undefined : decodeURIComponent(part))

/** `host:port,host:port` → addresses; undefined when any part is malformed. */
export const parseClusterNodes = (text: string): ReadonlyArray<ClusterNodeAddress> | undefined => {
  const nodes: Array<ClusterNodeAddress> = []
  for (const part of text.split(",")) {
    const match = /^\s*(\[[0-9a-fA-F:]+\]|[^\s:,[\]]+):(\d{1,5})\s*$/.exec(part)
    if (match === null || Number(match[2]) < 1 || Number(match[2]) > 65535) return undefined
    nodes.push({ host: match[1].replace(/^\[|\]$/g, ""), port: Number(match[2]) })
  }
  return nodes
}

/** A `REDIS_URL` value as a target, or a message saying what is wrong with it. */
export const parseRedisUrl = (text: string): RedisTarget | string => {
  if (/^rediss?\+sentinel:/.test(text)) {
    const sentinel = SENTINEL_URL.exec(text)
    const sentinels = sentinel === null ? undefined : parseClusterNodes(sentinel[4])
    if (sentinel === null || sentinels === undefined) {
      return "a redis+sentinel:// URL is redis+sentinel://[user:password@]host:port[,host:port…]/<master-name>"
    }
    const query = new URLSearchParams(sentinel[6] ?? "")
    const unknown = [...query.keys()].find((key) => !SENTINEL_PARAMS.has(key))
    if (unknown !== undefined) return `unknown redis+sentinel:// parameter '${unknown}' (expected sentinel_username, sentinel_password)`
    return {
      kind: "sentinel",
      sentinels,
      name: decodeURIComponent(sentinel[5]),
      username: decodePart(sentinel[2]),
      password: decodePart(sentinel[3]),
      sentinelUsername: query.get("sentinel_username") ?? undefined,
      sentinelPassword: query.get("sentinel_password") ?? undefined,
      tls: sentinel[1] === "rediss"
    }
  }
  const cluster = CLUSTER_URL.exec(text)
  if (cluster !== null) {
    const nodes = parseClusterNodes(cluster[4])
    if (nodes === undefined) return "a redis+cluster:// URL lists seed nodes as host:port[,host:port…]"
    return { kind: "cluster", nodes, username: decodePart(cluster[2]), password: decodePart(cluster[3]), tls: cluster[1] === "rediss" }
  }
  if (!/^rediss?:\/\//.test(text)) return "expected redis://, rediss://, redis+cluster://, redis+sentinel:// (or their rediss forms)"
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return "not a valid URL"
  }
  // ioredis takes the path as the database number, and a SELECT Redis refuses leaves it silently on db 0.
  const db = url.pathname.replace(/^\//, "")
  if (db !== "" && !(/^\d{1,2}$/.test(db) && Number(db) < DATABASES)) {
    return `the database number (the URL's path) must be 0-${DATABASES - 1}, as a Redis server has ${DATABASES} databases by default; got '/${db}'`
  }
  return { kind: "standalone", url: text }
}

/** Reconnect forever, backing off to 2 s: the gateway outlives Redis outages. */
const backoff = (attempt: number) => Math.min(attempt * 100, 2000)

export interface ClientOptions {
  /** Fail commands at once while Redis is away (the gateway answers 503) instead of queueing them. */
  readonly failFast: boolean
  readonly commandTimeoutMs?: number
  /** For Cluster: one subscriber connection per master for SSUBSCRIBE (sharded pub/sub). */
  readonly shardedSubscribers?: boolean
  readonly lazyConnect?: boolean
}

export const createClient = (target: RedisTarget, options: ClientOptions): RedisClient => {
  const failFast: RedisOptions = options.failFast
    ? { maxRetriesPerRequest: 0, ...(options.commandTimeoutMs === undefined ? {} : { commandTimeout: options.commandTimeoutMs }) }
    : {}
  const standalone: RedisOptions = {
    retryStrategy: backoff,
    lazyConnect: options.lazyConnect ?? false,
    enableOfflineQueue: !options.failFast,
    ...(options.commandTimeoutMs === undefined ? {} : { connectTimeout: options.commandTimeoutMs }),
    ...failFast
  }
  if (target.kind === "standalone") return new Redis(target.url, standalone)
  if (target.kind === "sentinel") {
    return new Redis({
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
    })
  }
  const clusterOptions: ClusterOptions = {
    clusterRetryStrategy: backoff,
    lazyConnect: options.lazyConnect ?? false,
    enableOfflineQueue: !options.failFast,
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
export const reportReachability = (client: RedisClient, role: string): void => {
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
    : client.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined })
