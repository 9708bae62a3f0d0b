/**
 * The WebSocket client (`connectTaskSocket`) against real gateways: it
 * re-subscribes from the last delivered id after the gateway restarts
 * (nothing lost, nothing twice), pauses and catches up, and gets command ids.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { connectTaskSocket, type TaskEvent } from "../../src/client/index.ts"
import { redisPublisher } from "../../src/publisher/index.ts"
import { postEvents, step } from "../support/api.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventually, freePort, sleep } from "../support/ports.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"

describe("WebSocket client reconnect", () => {
  let redis: RedisServer
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it("re-subscribes from its last delivered id after the gateway restarts: no gap, no duplicate", async () => {
    const port = String(await freePort())
    let gateway = await startGateway({ REDIS_URL: redis.url, PORT: port })
    const publisher = redisPublisher({ redis: redis.url })
    const task = { agentId: "agent-r", taskId: uniqueTask("reconnect") }
    const events: Array<TaskEvent> = []
    const ends: Array<string> = []
    const statuses: Array<string> = []
    const socket = connectTaskSocket({ baseUrl: gateway.url, onStatus: (status) => statuses.push(status) })
    try {
      socket.subscribe({ ...task, onEvent: (event) => events.push(event), onEnd: (end) => ends.push(end) })
      for (let i = 1; i <= 3; i++) await publisher.publish(task, "WorkflowStepStarted", { step: i })
      await eventually(() => events.length === 3, 10_000, "3 events before the restart")

      await gateway.stop()
      for (let i = 4; i <= 6; i++) await publisher.publish(task, "WorkflowStepStarted", { step: i })
      gateway = await startGateway({ REDIS_URL: redis.url, PORT: port })
      await eventually(() => events.length === 6, 15_000, "the 3 events published while the gateway was down")
      await publisher.publish(task, "WorkflowCompleted", {})
      await eventually(() => ends.length === 1, 10_000, "the end")

      expect(events.map((event) => event.type === "WorkflowStepStarted" && event.data.step)).toEqual([1, 2, 3, 4, 5, 6, false])
      expect(new Set(events.map((event) => event.id)).size).toBe(7)
      expect(ends).toEqual(["completed"])
      expect(statuses).toContain("reconnecting")
    } finally {
      socket.close()
      await publisher.close()
      await gateway.stop()
    }
  }, 60_000)
})

describe("WebSocket client delivery control", () => {
  let gateway: Gateway
  beforeAll(async () => {
    gateway = await startGateway({ DEMO: "0" })
  })
  afterAll(async () => {
    await gateway?.stop()
  })

  it("pauses delivery and catches up on resume, in order", async () => {
    const agentId = "agent-p"
    const taskId = uniqueTask("pause")
    const events: Array<TaskEvent> = []
    const paused: Array<boolean> = []
    const socket = connectTaskSocket({ baseUrl: gateway.url })
    try {
      const subscription = socket.subscribe({ agentId, taskId, onEvent: (event) => events.push(event), onPausedChange: (p) => paused.push(p) })
      await postEvents(gateway.url, agentId, taskId, [step(1), step(2)])
      await eventually(() => events.length === 2, 10_000, "2 events")
      subscription.pause()
      await eventually(() => paused.length === 1, 5_000, "paused")
      await postEvents(gateway.url, agentId, taskId, [step(3), step(4), step(5)])
      await sleep(400)
      expect(events).toHaveLength(2)
      subscription.resume()
      await eventually(() => events.length === 5, 10_000, "the missed events")
      expect(events.map((event) => event.type === "WorkflowStepStarted" && event.data.step)).toEqual([1, 2, 3, 4, 5])
      expect(paused).toEqual([true, false])
    } finally {
      socket.close()
    }
  }, 30_000)

  it("sends workflow commands and resolves with the gateway's command id", async () => {
    const socket = connectTaskSocket({ baseUrl: gateway.url })
    try {
      const commandId = await socket.command({ agentId: "agent-c", taskId: uniqueTask("command") }, "pause", "test")
      expect(commandId).toMatch(/^[0-9a-f-]{36}$/)
      await expect(socket.command({ agentId: "agent-c", taskId: "bad id!" }, "cancel")).rejects.toMatchObject({ code: "invalid_frame" })
    } finally {
      socket.close()
    }
  }, 30_000)
})
