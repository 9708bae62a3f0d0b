/**
 * Redis restart in the middle of a stream (SPEC §7): Redis with appendonly
 * stops and starts again on the same port while a publisher with retries and
 * idempotency keys keeps publishing. Open streams stay open (heartbeats go on),
 * ingest answers 503 with Retry-After and /readyz says not ready during the
 * outage; afterwards every acknowledged event arrives once, in order, on every
 * open stream, and ids keep increasing after the AOF reload.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { redisPublisher } from "../../src/publisher/index.ts"
import { history, postEvents, step, taskPath } from "../support/api.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventually, sleep } from "../support/ports.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"
import { eventFrames, openSse } from "../support/sse.ts"

const OUTAGE_MS = 2000

describe("Redis restart (appendonly, same port) during a stream", () => {
  let redis: RedisServer
  let gateways: Array<Gateway>
  beforeAll(async () => {
    redis = await startRedis({ appendonly: true })
    const env = { REDIS_URL: redis.url, HEARTBEAT_MS: "200", REDIS_COMMAND_TIMEOUT_MS: "1000" }
    gateways = await Promise.all([startGateway(env), startGateway(env)])
  }, 30_000)
  afterAll(async () => {
    await Promise.all(gateways.map((gateway) => gateway.stop()))
    await redis.stop()
  })

  it("keeps streams open, answers 503 while down, and delivers every acknowledged event once, in order", async () => {
    const EVENTS = 400
    const agent = "agent-restart"
    const task = uniqueTask("restart")
    const streams = await Promise.all(
      Array.from({ length: 10 }, (_, i) => openSse(`${gateways[i % 2].url}${taskPath(agent, task)}/events/stream`))
    )
    await Promise.all(streams.map((stream) => stream.waitFor((frames) => frames.length >= 1)))

    const publisher = redisPublisher({ redis: redis.url, retry: { maxElapsedMs: 20_000 } })
    const acknowledged: Array<string> = []
    const publishing = (async () => {
      for (let n = 1; n <= EVENTS; n++) {
        acknowledged.push((await publisher.publish({ agentId: agent, taskId: task }, "WorkflowStepStarted", { step: n }))!)
        await sleep(3)
      }
      acknowledged.push((await publisher.publish({ agentId: agent, taskId: task }, "WorkflowCompleted", {}))!)
    })()

    await eventually(() => acknowledged.length >= EVENTS / 3, 20_000, "a third of the events published")
    await redis.kill()
    const downAt = Date.now()
    const heartbeats = () => streams.map((stream) => stream.frames.filter((frame) => frame.event === "heartbeat").length)
    const heartbeatsAtStop = heartbeats()

    // While Redis is down: ingest 503 with Retry-After, quickly; not ready; streams stay open.
    for (const gateway of gateways) {
      const started = performance.now()
      const ingest = await postEvents(gateway.url, agent, task, step(0))
      expect(ingest.status).toBe(503)
      expect(ingest.headers.get("retry-after")).toBe("1")
      expect(ingest.body.code).toBe("log_unavailable")
      expect(performance.now() - started).toBeLessThan(1500)
      const ready = await fetch(`${gateway.url}/readyz`)
      expect(ready.status).toBe(503)
    }
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)))
    expect(streams.every((stream) => !stream.isEnded())).toBe(true)
    const heartbeatsDuringOutage = heartbeats().map((count, i) => count - heartbeatsAtStop[i])
    expect(Math.min(...heartbeatsDuringOutage)).toBeGreaterThanOrEqual(3)
    const publishedBeforeRestart = acknowledged.length

    await redis.start()
    for (const gateway of gateways) {
      await eventually(async () => (await fetch(`${gateway.url}/readyz`)).status === 200, 15_000, "readyz after restart")
    }
    await publishing
    await publisher.close()
    expect(acknowledged.length).toBeGreaterThan(publishedBeforeRestart)
    await Promise.all(streams.map((stream) => stream.ended))

    // Ids keep increasing across the AOF reload, and the log holds each event once.
    const stored = (await history(gateways[0].url, agent, task, "?limit=1000")).body.events as Array<{ id: string }>
    expect(stored.map((event) => event.id)).toEqual(acknowledged)
    const numeric = acknowledged.map((id) => id.split("-").map(BigInt))
    for (let i = 1; i < numeric.length; i++) {
      const [ms, seq] = numeric[i]
      const [prevMs, prevSeq] = numeric[i - 1]
      expect(ms > prevMs || (ms === prevMs && seq > prevSeq)).toBe(true)
    }
    const expected = Array.from({ length: EVENTS }, (_, i) => i + 1)
    for (const stream of streams) {
      const events = eventFrames(stream.frames)
      expect(events.filter((f) => f.event === "WorkflowStepStarted").map((f) => JSON.parse(f.data).step)).toEqual(expected)
      expect(events.map((f) => f.id)).toEqual(acknowledged)
    }
  }, 60_000)
})
