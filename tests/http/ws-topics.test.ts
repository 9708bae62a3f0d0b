/**
 * WebSocket topics (src/transport/wsTopics.ts): on Bun, live subscriptions of
 * one task with the same `sub` and `types`, at the same position, get each
 * live event as one frame published once. What a client receives must not
 * change: sockets that join while events keep coming, that pause, resume,
 * unsubscribe or follow an LLM call mid-stream get exactly what a socket of
 * their own would have. The same tests run on Deno, which has no topics.
 */
import { expect, it } from "bun:test"
import { postEvents, step } from "../support/api.ts"
import { describeEachLog, uniqueTask } from "../support/harness.ts"
import { eventually, sleep } from "../support/ports.ts"
import { eventsOf, openWs, requestWs, subscribeWs, type WsClient, type WsFrame } from "../support/ws.ts"

const AGENT = "agent-topics"

const topicSubscriptions = async (url: string): Promise<number> => {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split("\n").find((candidate) => candidate.startsWith("taskstream_ws_topic_subscriptions "))
  return line === undefined ? NaN : Number(line.split(" ")[1])
}

/** Wait until the gauge of subscriptions on topics satisfies `holds`. */
const topicsUntil = (url: string, holds: (count: number) => boolean, what: string) =>
  eventually(async () => holds(await topicSubscriptions(url)), 10_000, `subscriptions on topics: ${what}`)

/** The frames about `sub` in the order received: `step n`, `chunk i`, `end reason`, or the op. */
const course = (frames: ReadonlyArray<WsFrame>, sub: string): Array<string> =>
  frames.filter((frame) => frame.sub === sub).map((frame) => {
    if (frame.op === "end") return `end ${frame.reason}`
    if (frame.op !== "event") return frame.op
    if (frame.event.type === "WorkflowLLMCallChunk") return `chunk ${frame.event.data.chunk_index}${frame.event.data.compacted ? " compacted" : ""}`
    return frame.event.type === "WorkflowStepStarted" ? `step ${frame.event.data.step}` : frame.event.type
  })

describeEachLog("WebSocket topics", {}, (h) => {
  const publish = (taskId: string, body: unknown) => postEvents(h().url, AGENT, taskId, body)
  const subscribe = (ws: WsClient, sub: string, taskId: string, extra: Record<string, unknown> = {}) => subscribeWs(ws, AGENT, sub, taskId, extra)
  const request = requestWs
  /** Publish steps from..to one request each, a few ms apart, until `to` (returns when done). */
  const publishSteps = async (taskId: string, from: number, to: number) => {
    for (let n = from; n <= to; n++) {
      await publish(taskId, [step(n)])
      await sleep(2)
    }
  }

  it("sockets that join while events keep coming each get every event once, in order, then the end", async () => {
    const task = uniqueTask()
    await publish(task, [step(1)])
    const sockets: Array<WsClient> = []
    const publishing = publishSteps(task, 2, 120)
    // Joining one after another, mid-stream: each catches up from the log, then goes live beside the others.
    for (let k = 0; k < 6; k++) {
      const ws = await openWs(h().url)
      expect((await subscribe(ws, "s1", task)).op).toBe("subscribed")
      sockets.push(ws)
      await sleep(15)
    }
    // A filtered subscription is a topic of its own; steps pass, the end always does.
    const filtered = await openWs(h().url)
    await subscribe(filtered, "s1", task, { types: ["WorkflowStepStarted"] })
    if (h().runtime === "bun") await topicsUntil(h().url, (count) => count >= 2, "at least 2")
    await publishing
    await publish(task, [{ type: "WorkflowStepCompleted", data: { step: 120 } }, { type: "WorkflowCompleted", data: {} }])
    const whole = [...Array.from({ length: 120 }, (_, i) => `step ${i + 1}`), "WorkflowStepCompleted", "WorkflowCompleted", "end completed"]
    for (const ws of sockets) {
      await ws.waitFor((frames) => frames.some((frame) => frame.op === "end"))
      expect(course(ws.frames, "s1")).toEqual(["subscribed", ...whole])
    }
    await filtered.waitFor((frames) => frames.some((frame) => frame.op === "end"))
    expect(course(filtered.frames, "s1")).toEqual(["subscribed", ...whole.filter((entry) => entry !== "WorkflowStepCompleted")])
    // Ended subscriptions leave their topics.
    await topicsUntil(h().url, (count) => count === 0, "none")
    for (const ws of [...sockets, filtered]) ws.close()
  })

  it("a socket paused beside others in step gets nothing while paused, then what it missed, once; unsubscribed, nothing more", async () => {
    const task = uniqueTask()
    await publish(task, [step(1)])
    const [paused, gone, watch] = [await openWs(h().url), await openWs(h().url), await openWs(h().url)]
    for (const ws of [paused, gone, watch]) await subscribe(ws, "s", task)
    await publish(task, [step(2)])
    for (const ws of [paused, gone, watch]) await ws.waitFor((frames) => eventsOf(frames, "s").length === 2)
    if (h().runtime === "bun") await topicsUntil(h().url, (count) => count === 3, "3")
    expect((await request(paused, { op: "pause", sub: "s" }, "paused")).position).toBe(eventsOf(paused.frames, "s")[1].id)
    expect((await request(gone, { op: "unsubscribe", sub: "s" }, "unsubscribed")).op).toBe("unsubscribed")
    const publishing = publishSteps(task, 3, 40)
    await watch.waitFor((frames) => eventsOf(frames, "s").length >= 20)
    expect((await request(paused, { op: "resume", sub: "s" }, "resumed")).op).toBe("resumed")
    await publishing
    await publish(task, [step(41)])
    // The sentinels: the one who never paused has 41; so must the one who resumed.
    for (const ws of [watch, paused]) await ws.waitFor((frames) => eventsOf(frames, "s").at(-1)?.data.step === 41)
    const all = Array.from({ length: 41 }, (_, i) => `step ${i + 1}`)
    expect(course(watch.frames, "s")).toEqual(["subscribed", ...all])
    const resumed = course(paused.frames, "s")
    expect(resumed.filter((entry) => entry.startsWith("step"))).toEqual(all)
    expect(resumed.indexOf("paused")).toBe(3)
    // Nothing between `paused` and `resumed`.
    expect(resumed[resumed.indexOf("paused") + 1]).toBe("resumed")
    expect(course(gone.frames, "s")).toEqual(["subscribed", "step 1", "step 2", "unsubscribed"])
    for (const ws of [paused, gone, watch]) ws.close()
  })

  it("sockets joining an LLM call mid-stream get its text so far once, then each next chunk once", async () => {
    const task = uniqueTask()
    const chunk = (index: number) => ({ type: "WorkflowLLMCallChunk", data: { call_id: "c", chunk: `w${index} `, chunk_index: index } })
    await publish(task, [{ type: "WorkflowLLMCallStarted", data: { call_id: "c", model: "m" } }, chunk(0)])
    const sockets: Array<WsClient> = []
    const streaming = (async () => {
      for (let index = 1; index <= 80; index++) {
        await publish(task, [chunk(index)])
        await sleep(2)
      }
    })()
    for (let k = 0; k < 5; k++) {
      const ws = await openWs(h().url)
      await subscribe(ws, "s", task)
      sockets.push(ws)
      await sleep(20)
    }
    await streaming
    await publish(task, [{ type: "WorkflowLLMCallCompleted", data: { call_id: "c", model: "m" } }])
    for (const ws of sockets) {
      await ws.waitFor((frames) => eventsOf(frames, "s").some((event) => event.type === "WorkflowLLMCallCompleted"))
      const chunks = eventsOf(ws.frames, "s").filter((event) => event.type === "WorkflowLLMCallChunk")
      // The text so far replaces what came before it; every later index once, none skipped.
      let text = ""
      for (const { data } of chunks) text = data.compacted === true ? data.chunk : text + data.chunk
      expect(text).toBe(Array.from({ length: 81 }, (_, i) => `w${i} `).join(""))
      const indexes = chunks.map((event) => event.data.chunk_index)
      const compacted = chunks.filter((event) => event.data.compacted === true).length
      expect(compacted).toBeLessThanOrEqual(1)
      for (let i = 1; i < indexes.length; i++) expect(indexes[i]).toBe(indexes[i - 1] + 1)
      expect(indexes.at(-1)).toBe(80)
    }
    for (const ws of sockets) ws.close()
  })
})
