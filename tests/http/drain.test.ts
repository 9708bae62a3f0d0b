/**
 * Graceful drain (SPEC §6): SIGTERM while 100 clients stream and a publisher
 * runs. The instance turns unready, closes its streams and exits within
 * DRAIN_MS; the clients resume on a second gateway (under Bun) on the same
 * Redis, and each ends with every event exactly once.
 */
import { afterAll, beforeAll, expect, it } from "bun:test"
import { postEvents, step, taskPath } from "../support/api.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { describeEachRuntime, uniqueTask } from "../support/harness.ts"
import { eventually, sleep } from "../support/ports.ts"
import { type RedisServer, startRedis } from "../support/redis.ts"
import { openRawSse } from "../support/rawSse.ts"
import { followAcross } from "../support/sse.ts"

describeEachRuntime("Graceful drain", (runtime) => {
  let redis: RedisServer
  let first: Gateway
  let second: Gateway
  beforeAll(async () => {
    redis = await startRedis()
    const env = { REDIS_URL: redis.url, DRAIN_MS: "3000", SSE_RETRY_MS: "100" }
    first = await startGateway(env, runtime)
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

describeEachRuntime("Drain ends responses cleanly", (runtime) => {
  it("sends every SSE response its terminating chunk and exits within DRAIN_MS, even with a client that never reads", async () => {
    const drainMs = 3000
    const gateway = await startGateway({ DRAIN_MS: String(drainMs), CLIENT_BUFFER_BYTES: String(8 * 1024 * 1024) }, runtime)
    try {
      const agent = "agent-drain"
      const task = uniqueTask("clean")
      const pad = "x".repeat(20_000)
      for (let n = 1; n <= 300; n += 30) {
        const batch = Array.from({ length: 30 }, (_, i) => step(n + i, { pad }))
        expect((await postEvents(gateway.url, agent, task, batch)).status).toBe(201)
      }
      const url = `${gateway.url}${taskPath(agent, task)}/events/stream`
      const idle = openRawSse(url)
      await idle.waitFor((frames) => frames.filter((frame) => frame.event === "WorkflowStepStarted").length === 300, 20_000)
      // Still receiving its history on a slow link when the signal comes.
      const reader = openRawSse(url, { bytesPerSecond: 1024 * 1024 })
      // About 6 MB of history waits for this one: more than the socket buffers hold.
      const stalled = openRawSse(url, { stalled: true })
      // Two thirds in (≈ 4 MB read, ≈ 2 MB to go at 1 MB/s): what is left fits in what the kernel holds
      // for it, so the end chunk written within DRAIN_MS reaches it on a loaded machine too.
      await reader.waitFor((frames) => frames.length >= 200, 20_000)
      await eventually(async () => /taskstream_connections\{transport="sse"\} 3\b/.test(await (await fetch(`${gateway.url}/metrics`)).text()), 10_000, "both streams open")
      const signalled = Date.now()
      let exitedAt = 0
      const exited = new Promise<number | null>((resolve) =>
        gateway.process.once("exit", (code) => {
          exitedAt = Date.now()
          resolve(code)
        })
      )
      gateway.process.kill("SIGTERM")
      expect(await exited).toBe(0)
      expect(exitedAt - signalled).toBeLessThan(drainMs)
      // What the kernel still held for the slow reader reaches it, then the end of the body.
      expect(await idle.closed).toEqual({ clean: true })
      expect(await reader.closed).toEqual({ clean: true })
      stalled.destroy()
    } finally {
      await gateway.stop()
    }
  }, 60_000)
})
