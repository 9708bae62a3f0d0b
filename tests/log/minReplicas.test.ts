/**
 * With REDIS_WAIT_REPLICAS the gateway says when the master takes writes without a replica
 * (`min-replicas-to-write` 0): a real redis-server, its setting changed with CONFIG SET, and a
 * user the ACL denies CONFIG to.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { Redis } from "ioredis"
import type { LogLine } from "../../src/observability/log.ts"
import { minReplicasToWrite, watchMinReplicas } from "../../src/log/redisTarget.ts"
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
  beforeAll(async () => {
    redis = await startRedis()
    await redis.client.call("ACL", "SETUSER", "publisher", "on", ">secret", "~*", "&*", "+@all", "-config")
  })
  afterAll(async () => {
    for (const client of clients) client.disconnect()
    await redis.stop()
  })

  it("reads the setting, and undefined where CONFIG is refused", async () => {
    await redis.client.config("SET", "min-replicas-to-write", "0")
    expect(await minReplicasToWrite(connect())).toBe(0)
    await redis.client.config("SET", "min-replicas-to-write", "1")
    expect(await minReplicasToWrite(connect())).toBe(1)
    expect(await minReplicasToWrite(connect({ username: "publisher", password: "secret" }))).toBeUndefined()
    await redis.client.config("SET", "min-replicas-to-write", "0")
  })

  it("warns once, on the first connection to a master without it, not again after a reconnect", async () => {
    await redis.client.config("SET", "min-replicas-to-write", "0")
    const lines: Array<string> = []
    const logLine: LogLine = (level, message) => void lines.push(`${level} ${message}`)
    const client = connect()
    watchMinReplicas(client, 1, logLine)
    await client.connect()
    await eventually(() => lines.length === 1, 5000, "the warning")
    expect(lines[0]).toStartWith("warn REDIS_WAIT_REPLICAS is set but the Redis master takes writes without a replica")
    // A reconnect (a failover brings another node): asked again, said once.
    let readies = 0
    client.on("ready", () => readies++)
    await redis.client.call("CLIENT", "KILL", "TYPE", "normal")
    await eventually(() => readies >= 1, 5000, "the reconnect")
    await eventually(async () => (await minReplicasToWrite(client)) === 0, 5000, "the client answering again")
    expect(lines).toHaveLength(1)
  })

  it("says nothing without REDIS_WAIT_REPLICAS, or with the setting in place", async () => {
    const lines: Array<string> = []
    const logLine: LogLine = (level, message) => void lines.push(`${level} ${message}`)
    const without = connect()
    watchMinReplicas(without, 0, logLine)
    await without.connect()
    await redis.client.config("SET", "min-replicas-to-write", "1")
    const configured = connect()
    // The same check, after ours: once it answers, ours has answered (one connection, in order).
    watchMinReplicas(configured, 1, logLine)
    let checked = false
    configured.on("ready", () => void minReplicasToWrite(configured).then(() => (checked = true)))
    await configured.connect()
    await eventually(() => checked, 5000, "the check")
    expect(lines).toEqual([])
    await redis.client.config("SET", "min-replicas-to-write", "0")
  })
})
