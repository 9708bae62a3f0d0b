/**
 * Redis Cluster (SPEC §2, §5): two gateways on a local 3-master cluster.
 * Tasks hash to slots on every master; live notifications use sharded pub/sub
 * with one subscriber connection per shard per gateway; when those connections
 * are cut, every stream catches up from the log with no gap and no duplicate.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { Redis } from "ioredis"
import { httpPublisher } from "../../src/publisher/index.ts"
import { history, postEvents, step, taskPath } from "../support/api.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { sleep } from "../support/ports.ts"
import { CLUSTER_START_MS, type RedisClusterServer, startRedisCluster } from "../support/redisCluster.ts"
import { eventFrames, openSse, type SseStream } from "../support/sse.ts"

const AGENT = "agent-cluster"
const stepsOf = (stream: SseStream) =>
  eventFrames(stream.frames).filter((f) => f.event === "WorkflowStepStarted").map((f) => JSON.parse(f.data).step as number)
const sequence = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

/** Run `each` on a plain connection to every node of the cluster. */
const onEveryNode = async <A>(cluster: RedisClusterServer, each: (node: Redis) => Promise<A>): Promise<Array<A>> =>
  Promise.all(
    cluster.ports.map(async (port) => {
      const node = new Redis(port, "127.0.0.1")
      try {
        return await each(node)
      } finally {
        node.disconnect()
      }
    })
  )

describe("Gateways on a Redis Cluster", () => {
  let cluster: RedisClusterServer
  let gateways: Array<Gateway>
  beforeAll(async () => {
    cluster = await startRedisCluster()
    gateways = await Promise.all([
      startGateway({ REDIS_URL: cluster.url }),
      startGateway({ REDIS_CLUSTER_NODES: cluster.nodes })
    ])
  }, CLUSTER_START_MS)
  afterAll(async () => {
    await Promise.all(gateways.map((gateway) => gateway.stop()))
    await cluster.stop()
  })

  /** Open two streams per task, one on each gateway, and wait until both are open. */
  const follow = async (tasks: ReadonlyArray<string>) => {
    const streams = await Promise.all(
      tasks.flatMap((task) => gateways.map((gateway) => openSse(`${gateway.url}${taskPath(AGENT, task)}/events/stream`)))
    )
    await Promise.all(streams.map((stream) => stream.waitFor((frames) => frames.length >= 1)))
    return streams
  }

  /** Publish 1..events to every task, alternating gateways, `between` after each round. */
  const publish = async (tasks: ReadonlyArray<string>, events: number, between: (n: number) => Promise<void> = async () => {}) => {
    for (let n = 1; n <= events; n++) {
      await Promise.all(
        tasks.map(async (task, t) => {
          const response = await postEvents(gateways[(n + t) % gateways.length].url, AGENT, task, step(n))
          expect(response.status).toBe(201)
        })
      )
      await between(n)
    }
    await Promise.all(tasks.map((task) => postEvents(gateways[0].url, AGENT, task, { type: "WorkflowCompleted", data: {} })))
  }

  it("spreads tasks over every master and delivers each task's events in order, with one subscriber per shard per gateway", async () => {
    const tasks = Array.from({ length: 24 }, () => uniqueTask("slot"))
    const masters = new Set(await Promise.all(tasks.map((task) => cluster.masterOf(`ts:{${task}}:log`))))
    expect(masters.size).toBe(3)
    const streams = await follow(tasks)
    const pubsubClients = await onEveryNode(cluster, async (node) =>
      String(await node.call("CLIENT", "LIST", "TYPE", "pubsub")).trim().split("\n").filter((line) => line !== "").length
    )
    // Each gateway holds one sharded subscriber connection on each master that serves a followed task.
    expect(pubsubClients).toEqual(cluster.ports.map(() => gateways.length))
    const shardChannels = await onEveryNode(cluster, async (node) => (await node.call("PUBSUB", "SHARDCHANNELS")) as Array<string>)
    expect(shardChannels.flat().sort()).toEqual(tasks.map((task) => `ts:{${task}}:live`).sort())

    await publish(tasks, 50)
    await Promise.all(streams.map((stream) => stream.ended))
    for (const stream of streams) {
      expect(stepsOf(stream)).toEqual(sequence(50))
      expect(eventFrames(stream.frames).at(-1)?.event).toBe("WorkflowCompleted")
    }
  }, 60_000)

  it("catches up from the log when the sharded subscriber connections are cut, losing and repeating nothing", async () => {
    const tasks = Array.from({ length: 6 }, () => uniqueTask("cut"))
    const streams = await follow(tasks)
    let cuts = 0
    await publish(tasks, 300, async (n) => {
      if (n % 75 === 0) {
        const killed = await onEveryNode(cluster, async (node) => Number(await node.call("CLIENT", "KILL", "TYPE", "pubsub")))
        cuts += killed.reduce((a, b) => a + b, 0)
      }
      await sleep(1)
    })
    expect(cuts).toBeGreaterThanOrEqual(3 * gateways.length)
    await Promise.all(streams.map((stream) => stream.ended))
    for (const stream of streams) {
      expect(stepsOf(stream)).toEqual(sequence(300))
      expect(eventFrames(stream.frames).at(-1)?.event).toBe("WorkflowCompleted")
    }
  }, 60_000)
})

describe("A Redis Cluster master killed, its replica promoted", () => {
  let cluster: RedisClusterServer
  let gateway: Gateway
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicas: 1 })
    gateway = await startGateway({ REDIS_URL: cluster.url, REDIS_COMMAND_TIMEOUT_MS: "1000" })
  }, CLUSTER_START_MS)
  afterAll(async () => {
    await gateway.stop()
    await cluster.stop()
  })

  it("keeps streams open through the failover and delivers the task's log once, in order, ending with the terminal event", async () => {
    const EVENTS = 200
    const task = uniqueTask("failover")
    const victim = await cluster.masterOf(`ts:{${task}}:log`)
    const streams = await Promise.all(
      Array.from({ length: 5 }, () => openSse(`${gateway.url}${taskPath(AGENT, task)}/events/stream`))
    )
    await Promise.all(streams.map((stream) => stream.waitFor((frames) => frames.length >= 1)))
    const publisher = httpPublisher({ url: gateway.url, retry: { maxElapsedMs: 30_000 } })
    const acknowledged: Array<number> = []
    for (let n = 1; n <= EVENTS; n++) {
      await publisher.publish({ agentId: AGENT, taskId: task }, "WorkflowStepStarted", { step: n })
      acknowledged.push(n)
      if (n === EVENTS / 2) await cluster.kill(victim)
      await sleep(2)
    }
    await publisher.publish({ agentId: AGENT, taskId: task }, "WorkflowCompleted", {})
    expect(await cluster.masterOf(`ts:{${task}}:log`)).not.toBe(victim)
    await Promise.all(streams.map((stream) => stream.ended))
    const stored = (await history(gateway.url, AGENT, task, "?limit=1000")).body.events as Array<{ id: string }>
    for (const stream of streams) {
      const events = eventFrames(stream.frames)
      expect(events.map((f) => f.id)).toEqual(stored.map((event) => event.id))
      expect(stepsOf(stream)).toEqual(acknowledged)
      expect(events.at(-1)?.event).toBe("WorkflowCompleted")
    }
  }, 90_000)
})
