/**
 * The broker bridge (SPEC §10.2b) with two real gateways on one real Redis:
 * a producer that only knows Redis publishes to channels (a Python process
 * with redis-py) and XADDs to a stream; every event is stored once and
 * streamed in order; a gateway killed mid-stream loses nothing on the stream
 * bridge; malformed messages are skipped, counted, and (stream) dead-lettered.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { spawnSync } from "node:child_process"
import { join } from "node:path"
import { history, taskPath } from "../support/api.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventually } from "../support/ports.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"
import { eventFrames, openSse } from "../support/sse.ts"

const AGENT = "agent-bridge"
const STREAM = "producer:events"
const CLAIM_MS = 1000

const metric = async (gateway: Gateway, source: string, outcome: string) => {
  const text = await (await fetch(`${gateway.url}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith("taskstream_ingest_messages_total") && l.includes(`source="${source}"`) && l.includes(`outcome="${outcome}"`))
  return line === undefined ? 0 : Number(line.split(" ").at(-1))
}

/** The events of a task as stored, in order. */
const stored = async (baseUrl: string, taskId: string) => (await history(baseUrl, AGENT, taskId, "?limit=1000")).body.events as Array<any>

describe("broker bridge [bun, redis log, two gateways]", () => {
  let redis: RedisServer
  const gateways: Array<Gateway> = []
  const env = () => ({ REDIS_URL: redis.url, INGEST_PUBSUB: "workflow.*", INGEST_STREAM: STREAM, INGEST_CLAIM_MS: String(CLAIM_MS), MAX_EVENT_BYTES: "4096" })

  beforeAll(async () => {
    redis = await startRedis()
    gateways.push(await startGateway(env()), await startGateway(env()))
  })
  afterAll(async () => {
    for (const gateway of gateways) await gateway.stop()
    await redis.stop()
  })

  it("stores every published event once, in order, and skips and counts malformed messages", async () => {
    // Both gateways hold a pattern subscription before the producer starts.
    await eventually(async () => ((await redis.client.call("CLIENT", "LIST")) as string).split("\n").filter((l) => / psub=1 /.test(l)).length >= 2, 10_000, "two bridge subscriptions")
    const taskId = uniqueTask("pubsub")
    const stream = await openSse(`${gateways[0].url}${taskPath(AGENT, taskId)}/events/stream`)
    const producer = spawnSync("/usr/bin/python3", [join(import.meta.dir, "producer.py"), String(redis.port), AGENT, taskId, "40"], { encoding: "utf8" })
    expect(producer.status).toBe(0)
    await stream.ended
    const frames = eventFrames(stream.frames)
    expect(frames.map((frame) => frame.event)).toEqual(["WorkflowStarted", ...Array(40).fill("WorkflowStepStarted"), "WorkflowCompleted"])
    expect(frames.slice(1, 41).map((frame) => JSON.parse(frame.data).step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
    expect(await stored(gateways[1].url, taskId)).toHaveLength(42)
    // Both gateways saw (and refused) the two malformed messages; neither stopped.
    for (const gateway of gateways) expect(await metric(gateway, "pubsub", "rejected")).toBeGreaterThanOrEqual(2)
  })

  it("stores a stream's entries once and in order while the gateway reading it is killed and restarted", async () => {
    const taskId = uniqueTask("stream")
    const envelope = (type: string, data: Record<string, unknown>) => JSON.stringify({ type, agentId: AGENT, taskId, data })
    const add = (n: number) => redis.client.xadd(STREAM, "*", "event", envelope("WorkflowStepStarted", { step: n }))
    for (let n = 1; n <= 30; n++) await add(n)
    await eventually(async () => (await stored(gateways[0].url, taskId)).length >= 10, 10_000, "the first entries stored")
    // Kill the instance holding the reader lease, mid-stream, without a goodbye.
    const holder = (await redis.client.get(`${STREAM}:reader`))!
    const index = gateways.findIndex((gateway) => gateway.output().includes(`"consumer":"${holder}"`))
    expect(index).toBeGreaterThanOrEqual(0)
    await gateways[index].stop("SIGKILL")
    for (let n = 31; n <= 60; n++) await add(n)
    gateways[index] = await startGateway(env())
    for (let n = 61; n <= 80; n++) await add(n)
    await redis.client.xadd(STREAM, "*", "event", "{not json")
    await redis.client.xadd(STREAM, "*", "other", "no event field")
    const huge = envelope("WorkflowStepStarted", { step: 81, blob: "x".repeat(5000) })
    await redis.client.xadd(STREAM, "*", "event", huge)
    await redis.client.xadd(STREAM, "*", "event", envelope("WorkflowCompleted", {}))

    const stream = await openSse(`${gateways[index].url}${taskPath(AGENT, taskId)}/events/stream`)
    await stream.ended
    const steps = eventFrames(stream.frames).filter((frame) => frame.event === "WorkflowStepStarted").map((frame) => JSON.parse(frame.data).step)
    expect(steps).toEqual(Array.from({ length: 80 }, (_, i) => i + 1))
    expect(eventFrames(stream.frames).at(-1)?.event).toBe("WorkflowCompleted")
    // The bad entries are acknowledged into the dead-letter stream with their reason; nothing stays pending.
    const dead = (await redis.client.xrange(`${STREAM}:dead`, "-", "+")) as Array<[string, Array<string>]>
    expect(dead.map(([, fields]) => fields[fields.indexOf("event") + 1])).toEqual(["{not json", "", huge])
    expect(dead[2][1][dead[2][1].indexOf("reason") + 1]).toMatch(/MAX_EVENT_BYTES/)
    expect(dead.every(([, fields]) => fields[fields.indexOf("reason") + 1].length > 0)).toBe(true)
    await eventually(async () => ((await redis.client.xpending(STREAM, "taskstream")) as [number])[0] === 0, 10_000, "no pending entries")
    const rejected = (await metric(gateways[0], "stream", "rejected")) + (await metric(gateways[1], "stream", "rejected"))
    expect(rejected).toBe(3)
  }, 60_000)
})

describe("broker bridge settings", () => {
  it("refuse to start a bridge without REDIS_URL, naming the variable", async () => {
    const error = await startGateway({ INGEST_STREAM: STREAM }).then(
      async (gateway) => {
        await gateway.stop()
        return undefined
      },
      (failure: Error) => failure.message
    )
    expect(error).toMatch(/INGEST_STREAM needs REDIS_URL/)
  })
})
