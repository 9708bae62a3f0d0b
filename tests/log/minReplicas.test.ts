/**
 * With REDIS_WAIT_REPLICAS the gateway says when the master takes writes without a replica
 * (`min-replicas-to-write` 0, or `min-replicas-max-lag` 0): a real redis-server, its settings
 * changed with CONFIG SET, and a user the ACL denies CONFIG to.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "bun:test"
import { Redis } from "ioredis"
import type { LogLine } from "../../src/observability/log.ts"
import { minReplicasSettings, watchMinReplicas } from "../../src/log/redisTarget.ts"
import { eventually } from "../support/ports.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"

describe("min-replicas-to-write with REDIS_WAIT_REPLICAS [redis log]", () => {
  let redis: RedisServer
  const clients: Array<Redis> = []
  const connect = (options: { username?: string; password?: string } = {}) => {
    const client = new Redis(redis.port, "127.0.0.1", { lazyConnect: true, ...options })
    client.on("error", () => {})
    clients.push(client)
    return client
  }
  const configure = async (toWrite: number, maxLag = 10) => {
    await redis.client.config("SET", "min-replicas-to-write", String(toWrite))
    await redis.client.config("SET", "min-replicas-max-lag", String(maxLag))
  }
  /** The lines said, and a client watched with them; `checked` once its first check has answered. */
  const watched = async (waitReplicas: number) => {
    const lines: Array<string> = []
    const logLine: LogLine = (level, message) => void lines.push(`${level} ${message}`)
    const client = connect()
    watchMinReplicas(client, waitReplicas, logLine)
    // The same question on the same connection, after the watcher's: once it is answered, so is the watcher's.
    let checks = 0
    client.on("ready", () => void minReplicasSettings(client).then(() => checks++))
    await client.connect()
    return { lines, client, checks: () => checks }
  }
  beforeAll(async () => {
    redis = await startRedis()
    await redis.client.call("ACL", "SETUSER", "publisher", "on", ">secret", "~*", "&*", "+@all", "-config")
  })
  beforeEach(() => configure(0))
  afterAll(async () => {
    for (const client of clients) client.disconnect()
    await redis.stop()
  })

  it("reads both settings, and nothing where CONFIG is refused", async () => {
    expect(await minReplicasSettings(connect())).toEqual({ toWrite: 0, maxLag: 10 })
    await configure(1, 2)
    expect(await minReplicasSettings(connect())).toEqual({ toWrite: 1, maxLag: 2 })
    const refused = connect({ username: "publisher", password: "secret" })
    expect(await refused.ping()).toBe("PONG")
    expect(await minReplicasSettings(refused)).toBeUndefined()
  })

  it("warns once, on the first connection to a master without it, not again after a reconnect", async () => {
    const { lines, checks } = await watched(1)
    await eventually(() => checks() === 1, 5000, "the first check")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toStartWith("warn REDIS_WAIT_REPLICAS is set but the Redis master takes writes without a replica")
    // A reconnect (a failover brings another node): said once.
    await redis.client.call("CLIENT", "KILL", "TYPE", "normal")
    await eventually(() => checks() === 2, 5000, "the check after the reconnect")
    expect(lines).toHaveLength(1)
  })

  it("asks again on each connection: a node without it, reached after one with it, is said", async () => {
    await configure(1, 2)
    const { lines, checks } = await watched(1)
    await eventually(() => checks() === 1, 5000, "the first check")
    expect(lines).toEqual([])
    await configure(0)
    await redis.client.call("CLIENT", "KILL", "TYPE", "normal")
    await eventually(() => checks() === 2, 5000, "the check after the reconnect")
    expect(lines).toHaveLength(1)
  })

  it("counts a max lag of 0 as without it (Redis then never refuses)", async () => {
    await configure(1, 0)
    const { lines, checks } = await watched(1)
    await eventually(() => checks() === 1, 5000, "the check")
    expect(lines).toHaveLength(1)
  })

  it("says nothing without REDIS_WAIT_REPLICAS", async () => {
    const { lines, checks } = await watched(0)
    await eventually(() => checks() === 1, 5000, "the check")
    expect(lines).toEqual([])
  })
})
