/**
 * Where the Redis log lives (SPEC §1, §5): one standalone server, a Redis
 * Cluster or a Sentinel-managed master. Pure parsing, so the config validates
 * `REDIS_URL` / `REDIS_CLUSTER_NODES` at start-up without depending on the
 * log; the ioredis clients for a target are built in log/redisTarget.ts.
 *
 * Accepted forms:
 *   redis://[user:password@]host:port[/db]         standalone (rediss:// for TLS)
 *   redis+cluster://[user:password@]host:port[,host:port…]   Cluster seed nodes (rediss+cluster:// for TLS)
 *   REDIS_CLUSTER_NODES=host:port[,host:port…]     Cluster seed nodes without credentials
 *   redis+sentinel://[user:password@]host:port[,host:port…]/<master-name>[?sentinel_username=…&sentinel_password=…]
 *       Redis Sentinel (SPEC §11; rediss+sentinel:// for TLS to Redis and the sentinels): the user and
 *       password are Redis's, the query parameters the sentinels' own when they require auth
 */
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
