/**
 * In-flight LLM text is resumable (SPEC §8.2): a client that opens or
 * resumes while a call streams gets the text so far as one compacted chunk
 * (right after the call's start, or first), then the live chunks — no index
 * twice, none skipped; a completion without `content` is stored with the text.
 */
import { expect, it } from "bun:test"
import { redisPublisher } from "../../src/publisher/index.ts"
import { history, postEvents, taskPath } from "../support/api.ts"
import { ALL_LOG_KINDS, describeEachLog, uniqueTask } from "../support/harness.ts"
import { sleep } from "../support/ports.ts"
import { openSse, type SseFrame } from "../support/sse.ts"
import { eventsOf, openWs } from "../support/ws.ts"

const word = (call: string, n: number) => `${call}${n} `
const textOf = (call: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => word(call, from + i)).join("")
const chunk = (call: string | undefined, n: number) => ({
  type: "WorkflowLLMCallChunk",
  data: { chunk: word(call ?? "w", n), chunk_index: n, ...(call === undefined ? {} : { call_id: call }) }
})
const chunks = (call: string | undefined, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => chunk(call, from + i))

/** A call's text as a consumer builds it: a compacted chunk replaces, any other appends. */
const follow = (frames: ReadonlyArray<{ readonly data: Record<string, any> }>, callId: string) => {
  let text = ""
  const indexes: Array<number> = []
  for (const { data } of frames) {
    if (data.call_id !== callId) continue
    text = data.compacted === true ? data.chunk : text + data.chunk
    indexes.push(data.chunk_index)
  }
  return { text, indexes }
}

const chunkFrames = (frames: ReadonlyArray<SseFrame>) =>
  frames.filter((frame) => frame.event === "WorkflowLLMCallChunk").map((frame) => ({ ...frame, data: JSON.parse(frame.data) }))

describeEachLog("In-flight LLM text", {}, (harness) => {
  const stream = (agent: string, task: string, query = "", headers: Record<string, string> = {}) =>
    openSse(`${harness().url}${taskPath(agent, task)}/events/stream${query}`, headers)

  it("gives a client joining mid-call the text so far right after the call's start, then the live chunks; the completion stores the text", async () => {
    const { url } = harness()
    const agent = "agent-llm"
    const task = uniqueTask("midcall")
    const [started] = (await postEvents(url, agent, task, [{ type: "WorkflowLLMCallStarted", data: { model: "m-1" } }])).body.ids
    expect((await postEvents(url, agent, task, chunks(undefined, 0, 49))).status).toBe(201)
    const sse = await stream(agent, task)
    await sse.waitFor((frames) => frames.some((frame) => frame.event === "WorkflowLLMCallChunk"))
    const [first, compacted] = sse.frames.filter((frame) => frame.event.startsWith("Workflow"))
    expect(first).toMatchObject({ id: started, event: "WorkflowLLMCallStarted" })
    expect(compacted.id).toBeUndefined()
    expect(JSON.parse(compacted.data)).toEqual({ call_id: started, chunk: textOf("w", 0, 49), chunk_index: 49, compacted: true, model: "m-1" })

    expect((await postEvents(url, agent, task, chunks(undefined, 50, 99))).status).toBe(201)
    expect((await postEvents(url, agent, task, { type: "WorkflowLLMCallCompleted", data: { model: "m-1" } })).status).toBe(201)
    expect((await postEvents(url, agent, task, { type: "WorkflowCompleted", data: {} })).status).toBe(201)
    await sse.ended
    const live = chunkFrames(sse.frames)
    expect(live.map((frame) => frame.data.chunk_index)).toEqual([49, ...Array.from({ length: 50 }, (_, i) => 50 + i)])
    expect(live.every((frame) => frame.data.call_id === started)).toBe(true)
    expect(follow(live, started).text).toBe(textOf("w", 0, 99))
    const completion = sse.frames.find((frame) => frame.event === "WorkflowLLMCallCompleted")!
    expect(JSON.parse(completion.data)).toEqual({ call_id: started, content: textOf("w", 0, 99), model: "m-1" })
    // A replay after the call shows the whole answer.
    const stored = (await history(url, agent, task)).body.events.find((event: any) => event.type === "WorkflowLLMCallCompleted")
    expect(stored.data.content).toBe(textOf("w", 0, 99))
  })

  it("puts the compacted chunk first when the call started before the resume point, and keeps a completion's own content", async () => {
    const { url } = harness()
    const agent = "agent-llm"
    const task = uniqueTask("resume")
    await postEvents(url, agent, task, { type: "WorkflowLLMCallStarted", data: { model: "m", call_id: "c1" } })
    const [step] = (await postEvents(url, agent, task, { type: "WorkflowStepStarted", data: { step: 1 } })).body.ids
    await postEvents(url, agent, task, chunks("c1", 0, 9))
    const sse = await stream(agent, task, "", { "last-event-id": step })
    await sse.waitFor((frames) => frames.some((frame) => frame.event === "WorkflowLLMCallChunk"))
    const first = sse.frames.find((frame) => frame.event.startsWith("Workflow"))!
    expect(first.event).toBe("WorkflowLLMCallChunk")
    expect(JSON.parse(first.data)).toEqual({ call_id: "c1", chunk: textOf("c1", 0, 9), chunk_index: 9, compacted: true, model: "m" })
    await postEvents(url, agent, task, [chunk("c1", 10), { type: "WorkflowLLMCallCompleted", data: { model: "m", call_id: "c1", content: "own" } }])
    await sse.waitFor((frames) => frames.some((frame) => frame.event === "WorkflowLLMCallCompleted"))
    expect(JSON.parse(sse.frames.find((frame) => frame.event === "WorkflowLLMCallCompleted")!.data).content).toBe("own")
    expect(chunkFrames(sse.frames).map((frame) => frame.data.chunk_index)).toEqual([9, 10])
    sse.close()
  })

  it("keeps two calls in flight apart by call_id, each compacted after its own start", async () => {
    const { url } = harness()
    const agent = "agent-llm"
    const task = uniqueTask("two")
    await postEvents(url, agent, task, [
      { type: "WorkflowLLMCallStarted", data: { model: "m", call_id: "a" } },
      { type: "WorkflowLLMCallStarted", data: { model: "m", call_id: "b" } }
    ])
    for (let n = 0; n < 5; n++) await postEvents(url, agent, task, [chunk("a", n), chunk("b", n)])
    const sse = await stream(agent, task)
    await sse.waitFor((frames) => chunkFrames(frames).length === 2)
    expect(sse.frames.filter((frame) => frame.event.startsWith("Workflow")).map((frame) =>
      frame.event === "WorkflowLLMCallChunk" ? `chunk ${JSON.parse(frame.data).call_id}` : `start ${JSON.parse(frame.data).call_id}`
    )).toEqual(["start a", "chunk a", "start b", "chunk b"])
    for (let n = 5; n < 8; n++) await postEvents(url, agent, task, [chunk("b", n), chunk("a", n)])
    await postEvents(url, agent, task, { type: "WorkflowLLMCallCompleted", data: { model: "m", call_id: "a" } })
    await sse.waitFor((frames) => frames.some((frame) => frame.event === "WorkflowLLMCallCompleted"))
    const live = chunkFrames(sse.frames)
    expect(follow(live, "a")).toEqual({ text: textOf("a", 0, 7), indexes: [4, 5, 6, 7] })
    expect(follow(live, "b")).toEqual({ text: textOf("b", 0, 7), indexes: [4, 5, 6, 7] })
    expect(JSON.parse(sse.frames.find((frame) => frame.event === "WorkflowLLMCallCompleted")!.data).content).toBe(textOf("a", 0, 7))
    // b is still in flight: a new client gets it compacted, and a's text no more.
    const late = await stream(agent, task)
    await late.waitFor((frames) => frames.some((frame) => frame.event === "WorkflowLLMCallCompleted") && chunkFrames(frames).length >= 1)
    expect(chunkFrames(late.frames).map((frame) => [frame.data.call_id, frame.data.chunk_index])).toEqual([["b", 7]])
    sse.close()
    late.close()
  })

  it("gives an include_history=false stream the live chunks only", async () => {
    const { url } = harness()
    const agent = "agent-llm"
    const task = uniqueTask("liveonly")
    await postEvents(url, agent, task, { type: "WorkflowLLMCallStarted", data: { model: "m", call_id: "c" } })
    await postEvents(url, agent, task, chunks("c", 0, 4))
    const sse = await stream(agent, task, "?include_history=false")
    await sleep(100)
    await postEvents(url, agent, task, chunks("c", 5, 6))
    await sse.waitFor((frames) => chunkFrames(frames).length === 2)
    expect(chunkFrames(sse.frames).map((frame) => [frame.data.chunk_index, frame.data.compacted])).toEqual([[5, undefined], [6, undefined]])
    sse.close()
  })

  it("ends with the exact text for 12 clients joining at random moments while 300 chunks stream (SSE and WebSocket)", async () => {
    const { url } = harness()
    const agent = "agent-llm"
    const task = uniqueTask("storm")
    const [started] = (await postEvents(url, agent, task, { type: "WorkflowLLMCallStarted", data: { model: "m" } })).body.ids
    const total = 300
    const sses: Array<Awaited<ReturnType<typeof stream>>> = []
    const sockets: Array<Awaited<ReturnType<typeof openWs>>> = []
    const joins = Array.from({ length: 12 }, (_, i) =>
      (async () => {
        await sleep(Math.random() * 1500)
        if (i % 3 === 2) {
          const ws = await openWs(url)
          ws.send({ op: "subscribe", sub: "s", agentId: agent, taskId: task })
          sockets.push(ws)
        } else {
          sses.push(await stream(agent, task))
        }
      })()
    )
    for (let n = 0; n < total; n++) {
      expect((await postEvents(url, agent, task, chunk(undefined, n))).status).toBe(201)
      await sleep(4)
    }
    await Promise.all(joins)
    await postEvents(url, agent, task, [{ type: "WorkflowLLMCallCompleted", data: { model: "m" } }, { type: "WorkflowCompleted", data: {} }])
    const expected = textOf("w", 0, total - 1)
    const check = (frames: ReadonlyArray<{ readonly data: Record<string, any> }>) => {
      const { text, indexes } = follow(frames, started)
      expect(text).toBe(expected)
      // One compacted chunk (or none for a client that joined before the first chunk), then every later index once.
      expect(indexes).toEqual(Array.from({ length: indexes.length }, (_, i) => total - indexes.length + i))
    }
    for (const sse of sses) {
      await sse.ended
      check(chunkFrames(sse.frames))
    }
    for (const ws of sockets) {
      await ws.waitFor((frames) => frames.some((frame) => frame.op === "end"), 10_000, "the end")
      check(eventsOf(ws.frames, "s").filter((event) => event.type === "WorkflowLLMCallChunk"))
      expect(eventsOf(ws.frames, "s").filter((event) => event.type === "WorkflowLLMCallChunk").every((event) => event.id === undefined)).toBe(true)
      ws.close()
    }
  }, 60_000)

  it("gives a WebSocket subscription that pauses mid-call the text it missed as one compacted chunk on resume", async () => {
    const { url } = harness()
    const agent = "agent-llm"
    const task = uniqueTask("wspause")
    await postEvents(url, agent, task, [{ type: "WorkflowLLMCallStarted", data: { model: "m", call_id: "p" } }, ...chunks("p", 0, 2)])
    const ws = await openWs(url)
    ws.send({ op: "subscribe", sub: "s", agentId: agent, taskId: task })
    await ws.waitFor((frames) => eventsOf(frames, "s").length === 2, 10_000, "the start and the compacted chunk")
    ws.send({ op: "pause", sub: "s" })
    await ws.waitFor((frames) => frames.some((frame) => frame.op === "paused"), 10_000, "paused")
    await postEvents(url, agent, task, chunks("p", 3, 5))
    ws.send({ op: "resume", sub: "s" })
    await ws.waitFor((frames) => eventsOf(frames, "s").some((event) => event.data.chunk_index === 5), 10_000, "the missed text")
    await postEvents(url, agent, task, chunks("p", 6, 6))
    await ws.waitFor((frames) => eventsOf(frames, "s").some((event) => event.data.chunk_index === 6), 10_000, "the live chunk")
    const received = eventsOf(ws.frames, "s").filter((event) => event.type === "WorkflowLLMCallChunk")
    expect(received.map((event) => [event.data.chunk_index, event.data.compacted ?? false])).toEqual([[2, true], [5, true], [6, false]])
    expect(follow(received, "p").text).toBe(textOf("p", 0, 6))
    ws.close()
  })

  it("keeps the chunks of a publisher that calls the append script itself", async () => {
    const { url, redis, cluster } = harness()
    const target = redis?.url ?? cluster?.url
    if (target === undefined) return // the memory log has no outside publishers
    const publisher = redisPublisher({ redis: target })
    const agent = "agent-llm"
    const task = uniqueTask("sdk")
    const ref = { agentId: agent, taskId: task }
    await publisher.publish(ref, "WorkflowLLMCallStarted", { model: "m", call_id: "x" })
    for (let n = 0; n < 3; n++) await publisher.publish(ref, "WorkflowLLMCallChunk", { chunk: word("x", n), chunk_index: n })
    const sse = await stream(agent, task)
    await sse.waitFor((frames) => chunkFrames(frames).length === 1)
    expect(chunkFrames(sse.frames)[0].data).toEqual({ call_id: "x", chunk: textOf("x", 0, 2), chunk_index: 2, compacted: true, model: "m" })
    await publisher.publish(ref, "WorkflowLLMCallCompleted", { model: "m" })
    await sse.waitFor((frames) => frames.some((frame) => frame.event === "WorkflowLLMCallCompleted"))
    expect(JSON.parse(sse.frames.find((frame) => frame.event === "WorkflowLLMCallCompleted")!.data)).toEqual({ call_id: "x", content: textOf("x", 0, 2), model: "m" })
    sse.close()
    await publisher.close()
    expect(url).toBeDefined()
  })
}, ALL_LOG_KINDS)
