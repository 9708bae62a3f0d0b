import { expect, it } from "bun:test"
import { history, postEvents, step, taskPath } from "../support/api.ts"
import { ALL_LOG_KINDS, describeEachLog, uniqueTask } from "../support/harness.ts"
import { sleep } from "../support/ports.ts"
import { eventFrames, openSse } from "../support/sse.ts"

const AGENT = "agent-1"

describeEachLog("SSE stream", { HEARTBEAT_MS: "300", HISTORY_MAX: "50", SSE_RETRY_MS: "1500" }, (h) => {
  const streamUrl = (taskId: string, query = "") => `${h().url}${taskPath(AGENT, taskId)}/events/stream${query}`
  const publish = (taskId: string, body: unknown) => postEvents(h().url, AGENT, taskId, body)
  const steps = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => step(from + i))

  it("opens with a retry line and SSE headers even when the task has no events yet", async () => {
    const stream = await openSse(streamUrl(uniqueTask()))
    expect(stream.status).toBe(200)
    expect(stream.headers.get("content-type")).toBe("text/event-stream; charset=utf-8")
    expect(stream.headers.get("cache-control")).toBe("no-cache")
    expect(stream.headers.get("x-accel-buffering")).toBe("no")
    await stream.waitFor((frames) => frames.length >= 1)
    expect(stream.raw().startsWith("retry: 1500\n")).toBe(true)
    stream.close()
  })

  it("delivers history then live events in id order, with the payload as data", async () => {
    const task = uniqueTask()
    await publish(task, [
      { type: "WorkflowStarted", data: { goal: "demo" } },
      { type: "WorkflowLLMCallStarted", data: { model: "gpt-4o", estimated_cost: 0.01 } }
    ])
    const stream = await openSse(streamUrl(task))
    await stream.waitFor((frames) => eventFrames(frames).length === 2)
    await publish(task, steps(1, 3))
    await stream.waitFor((frames) => eventFrames(frames).length === 5)
    const events = eventFrames(stream.frames)
    expect(events.map((frame) => frame.event)).toEqual([
      "WorkflowStarted",
      "WorkflowLLMCallStarted",
      "WorkflowStepStarted",
      "WorkflowStepStarted",
      "WorkflowStepStarted"
    ])
    expect(JSON.parse(events[1].data).model).toBe("gpt-4o")
    expect(events.map((frame) => JSON.parse(frame.data).step).slice(2)).toEqual([1, 2, 3])
    const stored = await history(h().url, AGENT, task)
    expect(events.map((frame) => frame.id)).toEqual(stored.body.events.map((event: { id: string }) => event.id))
    stream.close()
  })

  it("sends the whole envelope as data with format=envelope", async () => {
    const task = uniqueTask()
    await publish(task, { type: "WorkflowToolCallStarted", data: { tool_name: "search", tool_call_id: "c1", arguments: { q: "x" } } })
    const stream = await openSse(streamUrl(task, "?format=envelope"))
    await stream.waitFor((frames) => eventFrames(frames).length === 1)
    const [frame] = eventFrames(stream.frames)
    const envelope = JSON.parse(frame.data)
    expect(envelope).toMatchObject({ id: frame.id, type: "WorkflowToolCallStarted", agentId: AGENT, taskId: task })
    expect(envelope.data).toEqual({ tool_name: "search", tool_call_id: "c1", arguments: { q: "x" } })
    expect(Number.isNaN(Date.parse(envelope.time))).toBe(false)
    stream.close()
  })

  it("resumes after Last-Event-ID (header) and delivers nothing twice", async () => {
    const task = uniqueTask()
    const { body } = await publish(task, steps(1, 6))
    const stream = await openSse(streamUrl(task), { "last-event-id": body.ids[2] })
    await stream.waitFor((frames) => eventFrames(frames).length === 3)
    // The sentinel: once the next event arrives, no repeat of an earlier one can still come before it.
    await publish(task, step(7))
    await stream.waitFor((frames) => eventFrames(frames).some((frame) => JSON.parse(frame.data).step === 7))
    expect(eventFrames(stream.frames).map((frame) => JSON.parse(frame.data).step)).toEqual([4, 5, 6, 7])
    stream.close()
  })

  it("resumes after last_event_id (query) for clients that cannot set headers; the header wins over it", async () => {
    const task = uniqueTask()
    const { body } = await publish(task, steps(1, 4))
    const byQuery = await openSse(streamUrl(task, `?last_event_id=${body.ids[1]}`))
    await byQuery.waitFor((frames) => eventFrames(frames).length === 2)
    expect(eventFrames(byQuery.frames).map((frame) => JSON.parse(frame.data).step)).toEqual([3, 4])
    byQuery.close()
    const both = await openSse(streamUrl(task, `?last_event_id=${body.ids[0]}`), { "last-event-id": body.ids[2] })
    await both.waitFor((frames) => eventFrames(frames).length === 1)
    expect(JSON.parse(eventFrames(both.frames)[0].data).step).toBe(4)
    both.close()
  })

  it("sends a resync event when the resume id is older than the retained log, then everything retained", async () => {
    const task = uniqueTask()
    const first = await publish(task, steps(1, 1))
    for (let batch = 0; batch < 3; batch++) await publish(task, steps(2 + batch * 100, 101 + batch * 100))
    const retained = await history(h().url, AGENT, task, "?limit=1000")
    const oldest = retained.body.events[0]
    expect(oldest.id).not.toBe(first.body.ids[0])
    const stream = await openSse(streamUrl(task), { "last-event-id": first.body.ids[0] })
    await stream.waitFor((frames) => eventFrames(frames).length === retained.body.events.length)
    const resync = stream.frames.find((frame) => frame.event === "resync")
    expect(resync).toBeDefined()
    expect(JSON.parse(resync!.data)).toEqual({ reason: "history_trimmed", oldest: oldest.id })
    expect(stream.frames.indexOf(resync!)).toBeLessThan(stream.frames.indexOf(eventFrames(stream.frames)[0]))
    expect(eventFrames(stream.frames)[0].id).toBe(oldest.id)
    stream.close()
  })

  it("does not resync when the resume id is retained", async () => {
    const task = uniqueTask()
    const { body } = await publish(task, steps(1, 3))
    const stream = await openSse(streamUrl(task), { "last-event-id": body.ids[0] })
    await stream.waitFor((frames) => eventFrames(frames).length === 2)
    expect(stream.frames.some((frame) => frame.event === "resync")).toBe(false)
    stream.close()
  })

  it("closes after a terminal event and answers 204 to a reconnect at or after it", async () => {
    const task = uniqueTask()
    await publish(task, steps(1, 2))
    const stream = await openSse(streamUrl(task))
    await stream.waitFor((frames) => eventFrames(frames).length === 2)
    const done = await publish(task, { type: "WorkflowCompleted", data: { total_cost: 0.5 } })
    await stream.ended
    const last = eventFrames(stream.frames).at(-1)!
    expect(last.event).toBe("WorkflowCompleted")
    expect(last.id).toBe(done.body.ids[0])
    const again = await fetch(streamUrl(task), { headers: { "last-event-id": last.id! } })
    expect(again.status).toBe(204)
    const live = await fetch(streamUrl(task, "?include_history=false"))
    expect(live.status).toBe(204)
  })

  it("filters by type and by category, and still delivers the terminal event", async () => {
    const task = uniqueTask()
    await publish(task, [
      { type: "WorkflowStarted", data: {} },
      { type: "WorkflowLLMCallStarted", data: { model: "m" } },
      { type: "WorkflowToolCallStarted", data: { tool_name: "t", tool_call_id: "1" } },
      { type: "WorkflowLLMCallCompleted", data: { model: "m", cost: 0.1 } },
      { type: "WorkflowBudgetWarning", data: { cost: 0.8, limit: 1 } },
      { type: "WorkflowFailed", data: { error: "boom" } }
    ])
    const byCategory = await openSse(streamUrl(task, "?types=llm,WorkflowBudgetWarning"))
    await byCategory.ended
    expect(eventFrames(byCategory.frames).map((frame) => frame.event)).toEqual([
      "WorkflowLLMCallStarted",
      "WorkflowLLMCallCompleted",
      "WorkflowBudgetWarning",
      "WorkflowFailed"
    ])
  })

  it("sends heartbeats without ids during silence", async () => {
    const stream = await openSse(streamUrl(uniqueTask()))
    await stream.waitFor((frames) => frames.filter((frame) => frame.event === "heartbeat").length >= 2, 3000)
    const beat = stream.frames.find((frame) => frame.event === "heartbeat")!
    expect(beat.id).toBeUndefined()
    expect(Number.isNaN(Date.parse(JSON.parse(beat.data).time))).toBe(false)
    stream.close()
  })

  it("delivers LLM token chunks live only, without an id, and never stores them", async () => {
    const task = uniqueTask()
    await publish(task, step(1))
    const stream = await openSse(streamUrl(task))
    await stream.waitFor((frames) => eventFrames(frames).length === 1)
    const chunk = await publish(task, { type: "WorkflowLLMCallChunk", data: { chunk: "Hel", chunk_index: 0 } })
    expect(chunk.status).toBe(201)
    expect(chunk.body.ids).toEqual([null])
    await publish(task, step(2))
    await stream.waitFor((frames) => eventFrames(frames).length === 3)
    const [, chunkFrame, after] = eventFrames(stream.frames)
    expect(chunkFrame.event).toBe("WorkflowLLMCallChunk")
    expect(chunkFrame.id).toBeUndefined()
    expect(JSON.parse(chunkFrame.data).chunk).toBe("Hel")
    expect(after.id).toBeDefined()
    stream.close()
    const replay = await openSse(streamUrl(task))
    await replay.waitFor((frames) => eventFrames(frames).length === 2)
    await publish(task, step(3))
    await replay.waitFor((frames) => eventFrames(frames).some((frame) => JSON.parse(frame.data).step === 3))
    expect(eventFrames(replay.frames).map((frame) => frame.event)).toEqual(["WorkflowStepStarted", "WorkflowStepStarted", "WorkflowStepStarted"])
    replay.close()
    expect((await history(h().url, AGENT, task)).body.events).toHaveLength(3)
  })

  it("with include_history=false delivers only events appended after it opened", async () => {
    const task = uniqueTask()
    await publish(task, steps(1, 3))
    const stream = await openSse(streamUrl(task, "?include_history=false"))
    await stream.waitFor((frames) => frames.length >= 1)
    await sleep(100)
    await publish(task, steps(4, 5))
    await stream.waitFor((frames) => eventFrames(frames).length === 2)
    expect(eventFrames(stream.frames).map((frame) => JSON.parse(frame.data).step)).toEqual([4, 5])
    stream.close()
  })

  it("answers 404 for a task that belongs to another agent", async () => {
    const task = uniqueTask()
    await publish(task, step(1))
    const response = await fetch(`${h().url}${taskPath("agent-2", task)}/events/stream`)
    expect(response.status).toBe(404)
    expect((await response.json()).code).toBe("not_found")
  })

  it("waits on a task with no events and delivers its first event live", async () => {
    const task = uniqueTask()
    const stream = await openSse(streamUrl(task))
    await stream.waitFor((frames) => frames.length >= 1)
    await sleep(100)
    await publish(task, step(1))
    await stream.waitFor((frames) => eventFrames(frames).length === 1)
    stream.close()
  })
}, ALL_LOG_KINDS)
