/**
 * A live subscription Redis refuses (a real redis-server whose ACL user lacks
 * the channel permission) is not silent: the gateway logs it, counts it, turns
 * /readyz to 503 and retries; once the permission is granted, the stream gets
 * what it missed and live events again. The app runs in-process on the Redis log.
 */
import { afterAll, beforeAll, describe, expect, it, spyOn } from "bun:test"
import { parseRedisUrl, type RedisTarget } from "../../src/redisUrl.ts"
import { redisPublisher } from "../../src/publisher/index.ts"
import { taskPath } from "../support/api.ts"
import { startApp, type TestApp } from "../support/app.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventually } from "../support/ports.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"
import { eventFrames } from "../support/sse.ts"

describe("a live subscription Redis refuses [redis log]", () => {
  let redis: RedisServer
  let gateway: TestApp
  const logged: Array<string> = []
  let errors: ReturnType<typeof spyOn>
  beforeAll(async () => {
    redis = await startRedis()
    // Every key and command, but no pub/sub channel.
    await redis.client.call("ACL", "SETUSER", "gateway", "on", ">secret", "~*", "+@all", "resetchannels")
    errors = spyOn(console, "error").mockImplementation((line: unknown) => void logged.push(String(line)))
    gateway = await startApp({ redis: parseRedisUrl(`redis://gateway:secret@127.0.0.1:${redis.port}`) as RedisTarget, logLevel: "info" })
  })
  afterAll(async () => {
    await gateway?.close()
    errors?.mockRestore()
    await redis?.stop()
  })

  const metric = async () => {
    const text = await (await gateway.request("/metrics")).text()
    return Number(/^taskstream_redis_subscribe_failures_total (\d+)/m.exec(text)?.[1] ?? "NaN")
  }

  it("logs and counts the refusal, is not ready meanwhile, retries, and catches up once allowed", async () => {
    const task = { agentId: "agent-1", taskId: uniqueTask() }
    const publisher = redisPublisher({ redis: redis.url })
    await publisher.publish(task, "WorkflowStarted", {})
    const ready = await gateway.request("/readyz")
    expect({ status: ready.status, body: await ready.json() }).toEqual({ status: 200, body: { status: "ready" } })
    const stream = await gateway.openSse(`${taskPath(task.agentId, task.taskId)}/events/stream`)
    await stream.waitFor((frames) => eventFrames(frames).length === 1)
    await eventually(async () => (await metric()) >= 1, 5000, "a counted refusal")
    expect(logged.some((line) => line.includes("redis refused a live subscription") && line.includes("NOPERM"))).toBe(true)
    const notReady = await gateway.request("/readyz")
    expect(notReady.status).toBe(503)
    expect((await notReady.json()).reason).toContain("live subscription")
    await publisher.publish(task, "WorkflowStepStarted", { step: 1 })

    await redis.client.call("ACL", "SETUSER", "gateway", "allchannels")
    // The event published while refused arrives (a catch-up from the log), then live ones.
    await stream.waitFor((frames) => eventFrames(frames).length === 2)
    await eventually(async () => (await gateway.request("/readyz")).status === 200, 10_000, "ready again")
    await publisher.publish(task, "WorkflowStepStarted", { step: 2 })
    await stream.waitFor((frames) => eventFrames(frames).length === 3)
    expect(eventFrames(stream.frames).map((frame) => frame.event)).toEqual(["WorkflowStarted", "WorkflowStepStarted", "WorkflowStepStarted"])
    stream.close()
    await publisher.close()
  }, 30_000)
})
