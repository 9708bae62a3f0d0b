/**
 * Graceful drain (SPEC §6): SIGTERM while 100 clients stream and a publisher
 * runs. The instance turns unready, closes its streams and exits within
 * DRAIN_MS; the clients resume on a second gateway on the same Redis, and each
 * ends with every event exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { postEvents, step, taskPath } from "../support/api.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventually, sleep } from "../support/ports.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"
import { followAcross } from "../support/sse.ts"

describe("Graceful drain", () => {
  let redis: RedisServer
  let first: Gateway
  let second: Gateway
  beforeAll(async () => {
    redis = await startRedis()
    const env = { REDIS_URL: redis.url, DRAIN_MS: "3000", SSE_RETRY_MS: "100" }
    first = await startGateway(env)
    second = await startGateway(env)
  })
  afterAll(async () => {
    await first.stop()
    await second.stop()
    await redis.stop()
  })

  it("moves 100 streaming clients to another instance without losing or repeating an event", async () => {
    const agent = "agent-drain"
    const task = uniqueTask("drain")
    const path = `${taskPath(agent, task)}/events/stream`
    let opened = 0
    const clients = Array.from({ length: 100 }, () =>
      followAcross([`${first.url}${path}`, `${second.url}${path}`], { onOpen: () => opened++ })
    )
    await eventually(() => opened >= 100, 10_000, "100 open streams")
    const total = 600
    let published = 0
    const publishing = (async () => {
      for (let n = 1; n <= total; n += 3) {
        const response = await postEvents(second.url, agent, task, [step(n), step(n + 1), step(n + 2)])
        expect(response.status).toBe(201)
        published = n + 2
        await sleep(5)
      }
    })()
    await eventually(() => published >= 150, 10_000, "publishing under way")
    const signalled = Date.now()
    first.process.kill("SIGTERM")
    const exitCode = await new Promise<number | null>((resolve) => first.process.once("exit", resolve))
    expect(Date.now() - signalled).toBeLessThan(3000)
    expect(exitCode).toBe(0)
    expect(first.output()).toContain('"message":"draining"')
    await publishing
    expect((await postEvents(second.url, agent, task, { type: "WorkflowCompleted", data: {} })).status).toBe(201)
    const expected = Array.from({ length: total }, (_, i) => i + 1)
    for (const events of await Promise.all(clients)) {
      expect(events.filter((frame) => frame.event === "WorkflowStepStarted").map((frame) => JSON.parse(frame.data).step)).toEqual(expected)
      expect(events.at(-1)?.event).toBe("WorkflowCompleted")
    }
  }, 60_000)
})
