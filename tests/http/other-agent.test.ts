/**
 * Events of another agent on the same task id (on the app in-process, memory
 * log): a live-only event sent under agent B to a task of A with nothing
 * stored yet, or B's first stored event taking the id, is dropped and counted,
 * never delivered to A nor ending A's stream.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { taskPath } from "../support/api.ts"
import { startApp, type TestApp } from "../support/app.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventFrames } from "../support/sse.ts"

describe("events of another agent", () => {
  let gateway: TestApp
  beforeAll(async () => {
    gateway = await startApp()
  })
  afterAll(() => gateway.close())

  const dropped = async () => {
    const text = await (await gateway.request("/metrics")).text()
    return Number(/taskstream_events_dropped_total\{reason="other_agent"\} (\d+)/.exec(text)?.[1] ?? "NaN")
  }

  it("drops a live-only event of another agent on a task with no stored event, and counts it", async () => {
    const taskId = uniqueTask()
    const before = await dropped()
    const stream = await gateway.openSse(`${taskPath("agent-a", taskId)}/events/stream`)
    const publisher = gateway.publisher
    const chunk = (agentId: string, text: string) =>
      publisher.publish({ agentId, taskId }, "WorkflowLLMCallChunk", { chunk: text, chunk_index: 0 })
    // Live chunks reach only a subscription that listens: send A's until one arrives.
    for (let i = 0; eventFrames(stream.frames).length === 0 && i < 200; i++) {
      await chunk("agent-a", "ready?")
      await Bun.sleep(10)
    }
    const from = eventFrames(stream.frames).length
    expect(from).toBeGreaterThan(0)
    await chunk("agent-b", "not yours")
    // The sentinels: A's own chunk and A's first stored event arrive, B's chunk does not, and the stream stays open.
    await chunk("agent-a", "yours")
    await publisher.publish({ agentId: "agent-a", taskId }, "WorkflowStarted", {})
    await stream.waitFor((frames) => frames.some((frame) => frame.event === "WorkflowStarted"))
    expect(eventFrames(stream.frames).slice(from).map((frame) => frame.event === "WorkflowLLMCallChunk" ? JSON.parse(frame.data).chunk : frame.event))
      .toEqual(["yours", "WorkflowStarted"])
    expect(stream.isEnded()).toBe(false)
    expect(await dropped()).toBe(before + 1)
    stream.close()
  })

  it("drops the stored events of another agent that takes the task id, without ending the stream", async () => {
    const taskId = uniqueTask()
    const before = await dropped()
    const waiting = await gateway.openSse(`${taskPath("agent-a", taskId)}/events/stream`)
    await waiting.waitFor((frames) => frames.some((frame) => frame.retry !== undefined))
    // B's own subscriber is the sentinel: the same dispatch reaches both streams.
    const owner = await gateway.openSse(`${taskPath("agent-b", taskId)}/events/stream`)
    await owner.waitFor((frames) => frames.some((frame) => frame.retry !== undefined))
    const publisher = gateway.publisher
    for (let i = 0; eventFrames(owner.frames).length === 0 && i < 200; i++) {
      await publisher.publish({ agentId: "agent-b", taskId }, "WorkflowLLMCallChunk", { chunk: "ready?", chunk_index: 0 })
      await Bun.sleep(10)
    }
    await publisher.publish({ agentId: "agent-b", taskId }, "WorkflowStarted", {})
    await owner.waitFor((frames) => frames.some((frame) => frame.event === "WorkflowStarted"))
    expect(eventFrames(waiting.frames)).toEqual([])
    expect(waiting.isEnded()).toBe(false)
    expect(await dropped()).toBeGreaterThanOrEqual(before + 2)
    // A new request for the task as A is answered 404: it is B's now.
    expect((await gateway.request(`${taskPath("agent-a", taskId)}/events/stream`)).status).toBe(404)
    waiting.close()
    owner.close()
  })
})
