import { expect, it } from "bun:test"
import { history, postEvents, step, taskPath } from "../support/api.ts"
import { describeEachLog, uniqueTask } from "../support/harness.ts"
import { eventually, sleep } from "../support/ports.ts"
import { eventsOf, openWs, requestWs, subscribeWs, type WsClient } from "../support/ws.ts"

const AGENT = "agent-1"
const MAX_SUBSCRIPTIONS = 5

describeEachLog("WebSocket", { MAX_SUBSCRIPTIONS_PER_SOCKET: String(MAX_SUBSCRIPTIONS), MAX_EVENT_BYTES: "4096" }, (h) => {
  const publish = (taskId: string, body: unknown) => postEvents(h().url, AGENT, taskId, body)
  const steps = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => step(from + i))
  const storedIds = async (taskId: string) => {
    const ids: Array<string> = []
    for (let next = ""; ;) {
      const page = await history(h().url, AGENT, taskId, `?limit=1000${next === "" ? "" : `&after=${next}`}`)
      ids.push(...page.body.events.map((event: { id: string }) => event.id))
      if (page.body.next === null) return ids
      next = page.body.next
    }
  }
  const subscribe = (ws: WsClient, sub: string, taskId: string, extra: Record<string, unknown> = {}) => subscribeWs(ws, AGENT, sub, taskId, extra)
  const request = requestWs

  it("multiplexes two tasks on one socket, each event tagged with its sub and nothing crossed", async () => {
    const [a, b] = [uniqueTask("a"), uniqueTask("b")]
    await publish(a, steps(1, 3))
    await publish(b, steps(101, 102))
    const ws = await openWs(h().url)
    expect((await subscribe(ws, "sa", a)).op).toBe("subscribed")
    expect((await subscribe(ws, "sb", b)).op).toBe("subscribed")
    await publish(a, steps(4, 5))
    await publish(b, steps(103, 103))
    // Sentinels: once each task's next event arrives, nothing else about the others can still be on its way.
    await publish(a, steps(6, 6))
    await publish(b, steps(104, 104))
    await ws.waitFor((frames) => eventsOf(frames, "sa").at(-1)?.data.step === 6 && eventsOf(frames, "sb").at(-1)?.data.step === 104)
    expect(eventsOf(ws.frames, "sa").map((event) => event.taskId)).toEqual(Array(6).fill(a))
    expect(eventsOf(ws.frames, "sb").map((event) => event.taskId)).toEqual(Array(4).fill(b))
    expect(eventsOf(ws.frames, "sa").map((event) => event.id)).toEqual(await storedIds(a))
    expect(eventsOf(ws.frames, "sb").map((event) => event.data.step)).toEqual([101, 102, 103, 104])
    const envelope = eventsOf(ws.frames, "sa")[0]
    expect(envelope).toMatchObject({ type: "WorkflowStepStarted", agentId: AGENT, taskId: a, data: { step: 1 } })
    expect(Number.isNaN(Date.parse(envelope.time))).toBe(false)
    ws.close()
  })

  it("resumes from `since`, filters by types, and skips history with history:false", async () => {
    const task = uniqueTask()
    const { body } = await publish(task, [
      { type: "WorkflowStarted", data: {} },
      { type: "WorkflowLLMCallStarted", data: { model: "m" } },
      step(1),
      { type: "WorkflowLLMCallCompleted", data: { model: "m" } }
    ])
    const ws = await openWs(h().url)
    await subscribe(ws, "since", task, { since: body.ids[1] })
    await subscribe(ws, "llm", task, { types: ["llm"] })
    await subscribe(ws, "now", task, { history: false })
    await publish(task, steps(2, 2))
    // The sentinel: a last LLM event that every subscription takes; once all have it, nothing else is on its way.
    await publish(task, { type: "WorkflowLLMCallStarted", data: { model: "sentinel" } })
    const sentinel = (frames: ReadonlyArray<{ op: string }>, sub: string) => eventsOf(frames, sub).at(-1)?.data.model === "sentinel"
    await ws.waitFor((frames) => ["since", "llm", "now"].every((sub) => sentinel(frames, sub)))
    expect(eventsOf(ws.frames, "since").map((event) => event.id)).toEqual([body.ids[2], body.ids[3], expect.any(String), expect.any(String)])
    expect(eventsOf(ws.frames, "llm").map((event) => event.type)).toEqual(["WorkflowLLMCallStarted", "WorkflowLLMCallCompleted", "WorkflowLLMCallStarted"])
    expect(eventsOf(ws.frames, "now").map((event) => event.data.step ?? event.data.model)).toEqual([2, "sentinel"])
    ws.close()
  })

  it("sends end after a terminal event, and end at once when `since` is at the terminal event", async () => {
    const task = uniqueTask()
    await publish(task, steps(1, 1))
    const ws = await openWs(h().url)
    await subscribe(ws, "s", task)
    const done = await publish(task, { type: "WorkflowCancelled", data: { reason: "user" } })
    const end = await ws.next((frame) => frame.op === "end")
    expect(end).toEqual({ op: "end", sub: "s", reason: "cancelled" })
    expect(eventsOf(ws.frames, "s").at(-1).id).toBe(done.body.ids[0])
    // The ended subscription is gone: its sub can be reused.
    await subscribe(ws, "s", task, { since: done.body.ids[0] })
    await ws.waitFor((frames) => frames.filter((frame) => frame.op === "end").length === 2)
    expect(eventsOf(ws.frames, "s")).toHaveLength(2)
    ws.close()
  })

  it("answers a subscription to another agent's task with a not_found error", async () => {
    const task = uniqueTask()
    await publish(task, step(1))
    const ws = await openWs(h().url)
    const from = ws.frames.length
    ws.send({ op: "subscribe", sub: "x", agentId: "agent-2", taskId: task })
    expect(await ws.next((frame) => frame.op === "error", from)).toMatchObject({ sub: "x", code: "not_found" })
    ws.close()
  })

  it("pause stops delivery; resume delivers the 500 events published meanwhile, in order, once", async () => {
    const task = uniqueTask()
    await publish(task, steps(0, 0))
    const ws = await openWs(h().url)
    await subscribe(ws, "s", task)
    // A second, never paused subscription to the same task is the sentinel: the same dispatch reaches both.
    await subscribe(ws, "watch", task, { history: false })
    await ws.waitFor((frames) => eventsOf(frames, "s").length === 1)
    expect((await request(ws, { op: "pause", sub: "s" }, "paused")).op).toBe("paused")
    for (let batch = 0; batch < 5; batch++) await publish(task, steps(1 + batch * 100, 100 + batch * 100))
    await ws.waitFor((frames) => eventsOf(frames, "watch").length === 500)
    expect(eventsOf(ws.frames, "s")).toHaveLength(1)
    expect((await request(ws, { op: "resume", sub: "s" }, "resumed")).op).toBe("resumed")
    await ws.waitFor((frames) => eventsOf(frames, "s").length === 501)
    await publish(task, steps(501, 501))
    await ws.waitFor((frames) => eventsOf(frames, "s").at(-1)?.data.step === 501)
    const delivered = eventsOf(ws.frames, "s")
    expect(delivered.map((event) => event.data.step)).toEqual(Array.from({ length: 502 }, (_, i) => i))
    expect(delivered.map((event) => event.id)).toEqual(await storedIds(task))
    ws.close()
  })

  it("pause/resume 20 times while publishing continuously delivers exactly the published sequence", async () => {
    const task = uniqueTask()
    const ws = await openWs(h().url)
    await subscribe(ws, "s", task)
    let publishing = true
    let published = 0
    const publisher = (async () => {
      while (publishing) {
        await publish(task, steps(published + 1, published + 3))
        published += 3
        await sleep(1)
      }
    })()
    for (let round = 0; round < 20; round++) {
      await request(ws, { op: "pause", sub: "s" }, "paused")
      await sleep(5 + (round % 4) * 5)
      await request(ws, { op: "resume", sub: "s" }, "resumed")
      await sleep(5 + (round % 3) * 5)
    }
    publishing = false
    await publisher
    await ws.waitFor((frames) => eventsOf(frames, "s").length >= published, 10_000, `${published} events`)
    await publish(task, steps(published + 1, published + 1))
    await ws.waitFor((frames) => eventsOf(frames, "s").at(-1)?.data.step === published + 1)
    const delivered = eventsOf(ws.frames, "s")
    expect(published).toBeGreaterThan(20)
    expect(delivered.map((event) => event.data.step)).toEqual(Array.from({ length: published + 1 }, (_, i) => i + 1))
    expect(delivered.map((event) => event.id)).toEqual(await storedIds(task))
    ws.close()
  })

  it("replies to the frames about one sub in the order sent, while it is still loading its history", async () => {
    const task = uniqueTask()
    await publish(task, steps(1, 1000))
    await publish(task, steps(1001, 1500))
    const ws = await openWs(h().url)
    const from = ws.frames.length
    const sub = { sub: "s", agentId: AGENT, taskId: task }
    for (const frame of [
      { op: "subscribe", ...sub },
      { op: "pause", sub: "s" },
      { op: "unsubscribe", sub: "s" },
      { op: "subscribe", ...sub, history: false },
      { op: "resume", sub: "s" },
      { op: "unsubscribe", sub: "s" },
      { op: "pause", sub: "s" }
    ]) ws.send(frame)
    await ws.waitFor((frames) => frames.slice(from).filter((frame) => frame.op !== "event").length === 7)
    expect(ws.frames.slice(from).filter((frame) => frame.op !== "event").map((frame) => frame.op === "error" ? frame.code : frame.op))
      .toEqual(["subscribed", "paused", "unsubscribed", "subscribed", "resumed", "unsubscribed", "unknown_sub"])
    ws.close()
  })

  it("unsubscribe stops delivery and frees the sub; unknown subs are errors", async () => {
    const task = uniqueTask()
    const ws = await openWs(h().url)
    await subscribe(ws, "s", task)
    await subscribe(ws, "watch", task)
    expect(await request(ws, { op: "unsubscribe", sub: "s" }, "unsubscribed")).toEqual({ op: "unsubscribed", sub: "s" })
    await publish(task, step(1))
    // The subscription still open on the same task is the sentinel.
    await ws.waitFor((frames) => eventsOf(frames, "watch").length === 1)
    expect(eventsOf(ws.frames, "s")).toHaveLength(0)
    for (const op of ["unsubscribe", "pause", "resume"]) {
      expect(await request(ws, { op, sub: "s" }, "-")).toMatchObject({ op: "error", sub: "s", code: "unknown_sub" })
    }
    ws.close()
  })

  it("answers each of 24 malformed frames with an error frame and keeps the socket usable", async () => {
    const task = uniqueTask()
    const ws = await openWs(h().url)
    await subscribe(ws, "taken", task)
    const table: ReadonlyArray<readonly [frame: unknown, code: string, mentions?: string]> = [
      ["{not json", "invalid_json"],
      ["", "invalid_json"],
      ["42", "invalid_frame"],
      ["[1,2]", "invalid_frame"],
      ["null", "invalid_frame"],
      ['"subscribe"', "invalid_frame"],
      [{}, "unknown_op", "missing"],
      [{ op: "dance" }, "unknown_op", "dance"],
      [{ op: 7 }, "unknown_op"],
      [{ op: "subscribe", sub: "s1", taskId: task }, "invalid_frame", "agentId"],
      [{ op: "subscribe", sub: "s1", agentId: AGENT }, "invalid_frame", "taskId"],
      [{ op: "subscribe", agentId: AGENT, taskId: task }, "invalid_frame", "sub"],
      [{ op: "subscribe", sub: "", agentId: AGENT, taskId: task }, "invalid_frame", "sub"],
      [{ op: "subscribe", sub: "s1", agentId: "bad id!", taskId: task }, "invalid_frame", "agentId"],
      [{ op: "subscribe", sub: "s1", agentId: AGENT, taskId: task, since: "yesterday" }, "invalid_frame", "since"],
      [{ op: "subscribe", sub: "s1", agentId: AGENT, taskId: task, history: "yes" }, "invalid_frame", "history"],
      [{ op: "subscribe", sub: "s1", agentId: AGENT, taskId: task, types: "NoSuchType" }, "invalid_frame", "NoSuchType"],
      [{ op: "subscribe", sub: "s1", agentId: AGENT, taskId: task, task_id: "x" }, "invalid_frame", "task_id"],
      [{ op: "subscribe", sub: "taken", agentId: AGENT, taskId: task }, "duplicate_sub", "taken"],
      [{ op: "pause" }, "invalid_frame", "sub"],
      [{ op: "resume", sub: 5 }, "invalid_frame"],
      [{ op: "unsubscribe", sub: "nope" }, "unknown_sub", "nope"],
      [{ op: "command", ref: "c", agentId: AGENT, taskId: task, command: "explode" }, "invalid_frame", "command"],
      [{ op: "command", agentId: AGENT, taskId: task, command: "pause" }, "invalid_frame", "ref"],
      [{ op: "command", ref: "c", agentId: AGENT, taskId: task, command: "pause", reason: 3 }, "invalid_frame", "reason"]
    ]
    expect(table.length).toBeGreaterThanOrEqual(20)
    for (const [frame, code, mentions] of table) {
      const from = ws.frames.length
      ws.send(frame)
      const reply = await ws.next(() => true, from)
      expect({ frame, reply: reply.op, code: reply.code }).toEqual({ frame, reply: "error", code })
      expect(typeof reply.message).toBe("string")
      if (mentions !== undefined) expect(reply.message).toContain(mentions)
    }
    // Errors echo the ref/sub of the frame that caused them.
    expect(await request(ws, { op: "command", ref: "r9", agentId: AGENT, taskId: task, command: "halt" }, "ack")).toMatchObject({ ref: "r9", code: "invalid_frame" })
    expect(await request(ws, { op: "ping", ref: "p1" }, "pong")).toEqual({ op: "pong", ref: "p1" })
    await publish(task, step(1))
    await ws.waitFor((frames) => eventsOf(frames, "taken").length === 1)
    ws.close()
  })

  it(`refuses subscriptions over MAX_SUBSCRIPTIONS_PER_SOCKET (${MAX_SUBSCRIPTIONS}) with an error frame`, async () => {
    const ws = await openWs(h().url)
    for (let i = 0; i < MAX_SUBSCRIPTIONS; i++) expect((await subscribe(ws, `s${i}`, uniqueTask())).op).toBe("subscribed")
    const refused = await subscribe(ws, "one-more", uniqueTask())
    expect(refused).toMatchObject({ op: "error", sub: "one-more", code: "too_many_subscriptions" })
    await request(ws, { op: "unsubscribe", sub: "s0" }, "unsubscribed")
    expect((await subscribe(ws, "one-more", uniqueTask())).op).toBe("subscribed")
    ws.close()
  })

  it("closes with 1009 on a frame over MAX_EVENT_BYTES", async () => {
    const ws = await openWs(h().url)
    ws.send({ op: "ping", ref: "x".repeat(5000) })
    expect((await ws.closed).code).toBe(1009)
  })

  it("queues commands sent over WS and REST once per idempotency key, and acknowledges them", async () => {
    const task = uniqueTask()
    await publish(task, step(1))
    const ws = await openWs(h().url)
    const command = { op: "command", ref: `ref-${task}`, agentId: AGENT, taskId: task, command: "pause", reason: "user asked" }
    const ack = await request(ws, command, "ack")
    expect(ack).toEqual({ op: "ack", ref: command.ref, command_id: expect.any(String) })
    expect((await request(ws, command, "ack")).command_id).toBe(ack.command_id)
    const rest = (path: string, init: RequestInit = {}) => fetch(`${h().url}${taskPath(AGENT, task)}/${path}`, { method: "POST", ...init })
    const resumed = await rest("resume", { headers: { "idempotency-key": "k1", "content-type": "application/json" }, body: '{"reason":"go on"}' })
    expect(resumed.status).toBe(202)
    const resumedId = (await resumed.json()).command_id
    expect((await (await rest("resume", { headers: { "idempotency-key": "k1" } })).json()).command_id).toBe(resumedId)
    const cancelled = await rest("cancel")
    expect(cancelled.status).toBe(202)
    const cancelledId = (await cancelled.json()).command_id
    expect(new Set([ack.command_id, resumedId, cancelledId]).size).toBe(3)
    // The same ref for another command is another command, not a repeat of the pause.
    const reused = await request(ws, { ...command, command: "resume", reason: "reused ref" }, "ack")
    expect(reused.command_id).not.toBe(ack.command_id)
    expect((await fetch(`${h().url}${taskPath("agent-2", task)}/cancel`, { method: "POST" })).status).toBe(404)
    expect((await rest("cancel", { headers: { "content-type": "application/json" }, body: '{"reason":5}' })).status).toBe(400)
    // A body that is not declared JSON (fetch sends a string as text/plain, as a cross-site form would) is refused.
    expect((await rest("cancel", { body: '{"reason":"x"}' })).status).toBe(415)
    expect((await rest("explode")).status).toBe(404)
    expect(await request(ws, { ...command, ref: "other", agentId: "agent-2" }, "ack")).toMatchObject({ op: "error", ref: "other", code: "not_found" })
    const redis = h().redis
    if (redis !== undefined) {
      const entries = (await redis.client.xrange(`ts:{${task}}:ctl`, "-", "+")) as Array<[string, Array<string>]>
      const fields = entries.map(([, values]) => Object.fromEntries(values.map((value, i) => [value, values[i + 1]]).filter((_, i) => i % 2 === 0)))
      expect(fields).toEqual([
        { command_id: ack.command_id, agent_id: AGENT, command: "pause", reason: "user asked", time: expect.any(String), source: "ws" },
        { command_id: resumedId, agent_id: AGENT, command: "resume", reason: "go on", time: expect.any(String), source: "rest" },
        { command_id: cancelledId, agent_id: AGENT, command: "cancel", reason: "", time: expect.any(String), source: "rest" },
        { command_id: reused.command_id, agent_id: AGENT, command: "resume", reason: "reused ref", time: expect.any(String), source: "ws" }
      ])
    }
    ws.close()
  })

  it("releases every subscription when the socket closes", async () => {
    const tasks = [uniqueTask(), uniqueTask(), uniqueTask()]
    const ws = await openWs(h().url)
    for (const [i, task] of tasks.entries()) await subscribe(ws, `s${i}`, task)
    await request(ws, { op: "pause", sub: "s1" }, "paused")
    const redis = h().redis
    const subscribers = async (task: string) => ((await redis!.client.pubsub("NUMSUB", `ts:{${task}}:live`)) as [string, number])[1]
    if (redis !== undefined) for (const task of tasks) expect(await subscribers(task)).toBe(1)
    ws.close()
    await ws.closed
    if (redis !== undefined) {
      await eventually(async () => (await Promise.all(tasks.map(subscribers))).every((count) => count === 0), 5000, "live channels released")
    }
    // The gateway still serves the tasks to a new socket.
    const again = await openWs(h().url)
    await subscribe(again, "s", tasks[0])
    await publish(tasks[0], step(1))
    await again.waitFor((frames) => eventsOf(frames, "s").length === 1)
    again.close()
  })
})
