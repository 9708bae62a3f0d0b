/**
 * Many gateway instances on one Redis (SPEC §2, §7): three gateway processes
 * on one redis-server. A client on any instance receives what was published
 * through any other, with no gap and no duplicate; each instance keeps one
 * subscriber connection; a client of a SIGKILLed instance resumes on another
 * with Last-Event-ID and misses nothing, repeats nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { postEvents, step, taskPath } from "../support/api.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventually, sleep } from "../support/ports.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"
import { eventFrames, openSse, openSseSocket, type SseStream } from "../support/sse.ts"

const steps = (streams: ReadonlyArray<SseStream>) =>
  streams.flatMap((stream) =>
    eventFrames(stream.frames).filter((f) => f.event === "WorkflowStepStarted").map((f) => JSON.parse(f.data).step as number)
  )
const sequence = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

describe("Three gateway instances on one Redis", () => {
  let redis: RedisServer
  let gateways: Array<Gateway>
  beforeAll(async () => {
    redis = await startRedis()
    gateways = await Promise.all([0, 1, 2].map(() => startGateway({ REDIS_URL: redis.url })))
  }, 30_000)
  afterAll(async () => {
    await Promise.all(gateways.map((gateway) => gateway.stop()))
    await redis.stop()
  })

  it("delivers 1..N then the terminal event to 300 clients spread over the instances, published through all three", async () => {
    const TASKS = 3
    const CLIENTS_PER_TASK = 100
    const EVENTS = 150
    const agent = "agent-scale"
    const tasks = Array.from({ length: TASKS }, () => uniqueTask("scale"))
    const streams = await Promise.all(
      tasks.flatMap((task, t) =>
        Array.from({ length: CLIENTS_PER_TASK }, (_, c) =>
          openSseSocket(`${gateways[(t + c) % gateways.length].url}${taskPath(agent, task)}/events/stream`)
        )
      )
    )
    await Promise.all(streams.map((stream) => stream.waitFor((frames) => frames.length >= 1)))
    // One subscriber connection per instance, whatever the number of clients and tasks. A stream's
    // first frame (retry:) may come before its instance's SUBSCRIBE: wait for every instance's, then
    // check that there is no more than one each.
    const pubsubClients = () => redis.client.call("CLIENT", "LIST", "TYPE", "pubsub").then((list) => String(list).trim().split("\n"))
    await eventually(async () => (await pubsubClients()).length >= gateways.length, 10_000, "every instance's subscriber")
    expect(await pubsubClients()).toHaveLength(gateways.length)

    // One publisher per task, each sending its events round-robin through the three instances.
    await Promise.all(
      tasks.map(async (task, t) => {
        for (let n = 1; n <= EVENTS; n++) {
          const response = await postEvents(gateways[(t + n) % gateways.length].url, agent, task, step(n))
          expect(response.status).toBe(201)
        }
        await postEvents(gateways[t % gateways.length].url, agent, task, { type: "WorkflowCompleted", data: {} })
      })
    )
    await Promise.all(streams.map((stream) => stream.ended))
    for (const stream of streams) {
      expect(steps([stream])).toEqual(sequence(EVENTS))
      expect(eventFrames(stream.frames).at(-1)?.event).toBe("WorkflowCompleted")
    }
  }, 60_000)

  it("resumes clients of a SIGKILLed instance on another with Last-Event-ID: nothing lost, nothing repeated", async () => {
    const EVENTS = 600
    const CLIENTS = 20
    const agent = "agent-failover"
    const task = uniqueTask("failover")
    const victim = await startGateway({ REDIS_URL: redis.url })
    const [survivor] = gateways
    const path = `${taskPath(agent, task)}/events/stream`
    const first = await Promise.all(Array.from({ length: CLIENTS }, () => openSse(`${victim.url}${path}`)))
    await Promise.all(first.map((stream) => stream.waitFor((frames) => frames.length >= 1)))

    let published = 0
    const publishing = (async () => {
      for (let n = 1; n <= EVENTS; n += 3) {
        const response = await postEvents(survivor.url, agent, task, [step(n), step(n + 1), step(n + 2)])
        expect(response.status).toBe(201)
        published = n + 2
        await sleep(2)
      }
      await postEvents(survivor.url, agent, task, { type: "WorkflowCompleted", data: {} })
    })()
    while (published < EVENTS / 3) await sleep(5)
    await victim.stop("SIGKILL")
    await Promise.all(first.map((stream) => stream.ended))

    // Like EventSource: reconnect (here, to another instance) with the last id received.
    const second = await Promise.all(
      first.map((stream) => {
        const lastId = eventFrames(stream.frames).filter((frame) => frame.id !== undefined).at(-1)?.id
        expect(lastId).toBeDefined()
        return openSse(`${survivor.url}${path}`, { "last-event-id": lastId! })
      })
    )
    await publishing
    await Promise.all(second.map((stream) => stream.ended))
    for (let i = 0; i < CLIENTS; i++) {
      expect(steps([first[i]]).length).toBeGreaterThan(0)
      expect(steps([first[i]]).length).toBeLessThan(EVENTS)
      expect(steps([first[i], second[i]])).toEqual(sequence(EVENTS))
      expect(eventFrames(second[i].frames).at(-1)?.event).toBe("WorkflowCompleted")
    }
  }, 60_000)
})
