/**
 * Subscriber outage (SPEC §2, §7): when the gateway's Redis subscriber
 * connection is killed while events are published, every open stream stays
 * open and catches up from the log — nothing lost, nothing twice.
 */
import { describe, expect, it } from "bun:test"
import { postEvents, step, taskPath } from "../support/api.ts"
import { uniqueTask, useHarness } from "../support/harness.ts"
import { sleep } from "../support/ports.ts"
import { eventFrames, openSse } from "../support/sse.ts"

describe("Redis subscriber outage", () => {
  const harness = useHarness("redis")

  it("keeps every stream open and delivers every event once after CLIENT KILL TYPE pubsub", async () => {
    const { url, redis } = harness()
    const agent = "agent-outage"
    const task = uniqueTask("outage")
    const streams = await Promise.all(
      Array.from({ length: 10 }, () => openSse(`${url}${taskPath(agent, task)}/events/stream`))
    )
    await Promise.all(streams.map((stream) => stream.waitFor((frames) => frames.length >= 1)))
    const total = 600
    let killed = 0
    for (let n = 1; n <= total; n += 3) {
      const response = await postEvents(url, agent, task, [step(n), step(n + 1), step(n + 2)])
      expect(response.status).toBe(201)
      if (n % 150 === 1 && n > 1) killed += Number(await redis!.client.call("CLIENT", "KILL", "TYPE", "pubsub"))
      await sleep(2)
    }
    expect(killed).toBeGreaterThanOrEqual(3)
    await postEvents(url, agent, task, { type: "WorkflowCompleted", data: {} })
    await Promise.all(streams.map((stream) => stream.ended))
    const expected = Array.from({ length: total }, (_, i) => i + 1)
    for (const stream of streams) {
      const events = eventFrames(stream.frames)
      expect(events.filter((f) => f.event === "WorkflowStepStarted").map((f) => JSON.parse(f.data).step)).toEqual(expected)
      expect(events.at(-1)?.event).toBe("WorkflowCompleted")
    }
  }, 60_000)

  it("survives malformed messages published by hand on a task's live channel", async () => {
    const { url, redis, gateway } = harness()
    const agent = "agent-garbage"
    const task = uniqueTask("garbage")
    const stream = await openSse(`${url}${taskPath(agent, task)}/events/stream`)
    await postEvents(url, agent, task, step(1))
    await stream.waitFor((frames) => eventFrames(frames).length === 1)
    for (const garbage of ['{"x":', "not json", '{"type":"Nope","agentId":"a","data":{}}', '{"id":"1-1","type":"WorkflowStepStarted","agentId":"a","data":']) {
      await redis!.client.publish(`ts:{${task}}:live`, garbage)
    }
    await postEvents(url, agent, task, [step(2), { type: "WorkflowCompleted", data: {} }])
    await stream.ended
    expect(eventFrames(stream.frames).map((frame) => frame.event)).toEqual(["WorkflowStepStarted", "WorkflowStepStarted", "WorkflowCompleted"])
    expect(gateway.process.exitCode).toBeNull()
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    expect(gateway.output()).toContain("dropped a malformed live message")
  })
})
