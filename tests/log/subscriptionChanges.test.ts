/**
 * The Redis live feed's (un)subscribes of one event-loop turn go out in their order, each run of
 * one kind as one command (a burst of clients opening new tasks costs a few SUBSCRIBE commands,
 * not one each) — on a real redis-server, counted by its own command statistics. A channel left
 * and taken again in one turn stays subscribed; a channel the ACL refuses fails alone.
 */
import { afterAll, beforeAll, describe, expect, it, spyOn } from "bun:test"
import { Effect, Exit, Scope } from "effect"
import { type LiveFeed, makeLiveFeed } from "../../src/log/RedisLiveFeed.ts"
import { makeMetrics } from "../../src/observability/metrics.ts"
import { parseRedisUrl, type RedisTarget } from "../../src/redisUrl.ts"
import { eventually } from "../support/ports.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"

describe("subscription changes per turn [redis]", () => {
  let redis: RedisServer
  let scope: Scope.Closeable
  let feed: LiveFeed
  const received: Array<string> = []
  /** The channels local listeners would follow: each test asks for its own. */
  const wanted = new Set<string>()
  const logged: Array<string> = []
  let errors: ReturnType<typeof spyOn>
  beforeAll(async () => {
    errors = spyOn(console, "error").mockImplementation((line: unknown) => void logged.push(String(line)))
    redis = await startRedis()
    // Every channel but those named denied:*.
    await redis.client.call("ACL", "SETUSER", "gateway", "on", ">secret", "~*", "+@all", "resetchannels", "&ok:*")
    scope = Effect.runSync(Scope.make())
    const target = parseRedisUrl(`redis://gateway:secret@127.0.0.1:${redis.port}`) as RedisTarget
    feed = await Effect.runPromise(Scope.provide(
      makeLiveFeed(target, 2000, makeMetrics(), {
        onMessage: (channel, message) => void received.push(`${channel} ${message}`),
        wanted: () => [...wanted],
        wants: (channel) => wanted.has(channel),
        onResubscribed: () => {},
        onRestored: () => {}
      }),
      scope
    ))
  })
  afterAll(async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    errors?.mockRestore()
    await redis?.stop()
  })

  const subscribeCalls = async () => {
    const stats = String(await redis.client.call("INFO", "commandstats"))
    return Number(/^cmdstat_subscribe:calls=(\d+)/m.exec(stats)?.[1] ?? 0)
  }
  const subscribers = async (channel: string) => ((await redis.client.call("PUBSUB", "NUMSUB", channel)) as [string, number])[1]

  /** Channels local listeners now follow, asked for in this turn. */
  const follow = (...channels: Array<string>) => {
    for (const channel of channels) wanted.add(channel)
    return Promise.all(channels.map((channel) => feed.subscribe(channel)))
  }

  it("subscribes the channels asked for in one turn with one command", async () => {
    const before = await subscribeCalls()
    await follow("ok:a", "ok:b", "ok:c")
    expect(await subscribeCalls()).toBe(before + 1)
    for (const channel of ["ok:a", "ok:b", "ok:c"]) expect(await subscribers(channel)).toBe(1)
    await redis.client.publish("ok:b", "hello")
    await eventually(() => received.includes("ok:b hello"))
  })

  it("keeps a channel left and taken again in one turn subscribed, and one left after being taken unsubscribed", async () => {
    await follow("ok:again")
    feed.unsubscribe("ok:again")
    const again = feed.subscribe("ok:again")
    await follow("ok:gone").then(() => {
      wanted.delete("ok:gone")
      feed.unsubscribe("ok:gone")
    })
    await again
    await eventually(async () => (await subscribers("ok:gone")) === 0)
    expect(await subscribers("ok:again")).toBe(1)
  })

  it("fails only the channel the ACL refuses when it was asked for with others", async () => {
    await follow("ok:first", "denied:x", "ok:last")
    expect([...feed.failing().keys()]).toEqual(["denied:x"])
    expect(feed.failing().get("denied:x")).toContain("NOPERM")
    expect(logged.filter((line) => line.includes("redis refused a live subscription")).map((line) => JSON.parse(line).channel)).toEqual(["denied:x"])
    expect(await subscribers("ok:first")).toBe(1)
    expect(await subscribers("ok:last")).toBe(1)
    await redis.client.publish("ok:last", "still live")
    await eventually(() => received.includes("ok:last still live"))
  })
})
