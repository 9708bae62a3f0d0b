import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { sign } from "hono/jwt"
import { postEvents } from "../support/api.ts"
import { describeEachRuntime, startHarness, uniqueTask } from "../support/harness.ts"
import { eventually, sleep } from "../support/ports.ts"
import { closeCodeIn, clientFrame, openWs, rawWebSocket } from "../support/ws.ts"

const AGENT = "agent-1"

describeEachRuntime("WebSocket slow consumer", (runtime) => {
  let current: Awaited<ReturnType<typeof startHarness>>
  beforeAll(async () => {
    current = await startHarness("memory", { CLIENT_BUFFER_BYTES: "65536" }, runtime)
  })
  afterAll(() => current.stop())

  it("closes a socket that stops reading with 4008 once CLIENT_BUFFER_BYTES are waiting", async () => {
    const url = current.harness.url
    const task = uniqueTask()
    const socket = await rawWebSocket(url)
    socket.write(clientFrame(JSON.stringify({ op: "subscribe", sub: "s", agentId: AGENT, taskId: task })))
    await sleep(200)
    socket.pause()
    const big = "x".repeat(60_000)
    let ended = false
    socket.once("end", () => (ended = true))
    // ~30 MB: far more than the kernel's socket buffers hold.
    for (let batch = 0; batch < 32; batch++) {
      await postEvents(url, AGENT, task, Array.from({ length: 16 }, (_, i) => ({ type: "WorkflowStepStarted", data: { step: batch * 16 + i, big } })))
    }
    const received: Array<Buffer> = []
    socket.on("data", (chunk: Buffer) => received.push(chunk))
    socket.resume()
    // Bun ends the TCP connection after its close frame; Deno waits for the client's close frame, which this client never sends.
    const deadline = Date.now() + 20_000
    while (!ended && closeCodeIn(Buffer.concat(received)) === undefined && Date.now() < deadline) await sleep(50)
    const bytes = Buffer.concat(received)
    expect(bytes.length).toBeLessThan(30_000_000)
    expect(closeCodeIn(bytes)).toBe(4008)
    socket.destroy()
  }, 60_000)

  it("closes with 4008 a socket that stops reading while 8 of its subscriptions get events (on Bun: 8 topics)", async () => {
    const url = current.harness.url
    const tasks = Array.from({ length: 8 }, () => uniqueTask("many"))
    const socket = await rawWebSocket(url)
    tasks.forEach((task, i) => socket.write(clientFrame(JSON.stringify({ op: "subscribe", sub: `s${i}`, agentId: AGENT, taskId: task }))))
    await postEvents(url, AGENT, tasks[7], [{ type: "WorkflowStepStarted", data: { step: 0 } }])
    // The last subscription's first event is the sentinel: every subscription is open (and live) by then.
    const early: Array<Buffer> = []
    const collect = (chunk: Buffer) => early.push(chunk)
    socket.on("data", collect)
    await eventually(() => Buffer.concat(early).includes('"step":0'))
    socket.off("data", collect)
    socket.pause()
    let ended = false
    socket.once("end", () => (ended = true))
    socket.once("close", () => (ended = true))
    const pad = "x".repeat(6000)
    const before = await disconnects(url)
    // Each round is 8 × 6 KB to a socket that reads nothing: far past the 64 KB buffer within 400 rounds.
    for (let round = 1; round <= 400 && !ended; round++) {
      await Promise.all(tasks.map((task) => postEvents(url, AGENT, task, [{ type: "WorkflowStepStarted", data: { step: round, pad } }])))
      if (round % 50 === 0 && (await disconnects(url)) > before) break
    }
    // Frames are read from the start of the stream: the handshake and the sentinel included.
    const received = early
    socket.on("data", (chunk: Buffer) => received.push(chunk))
    socket.resume()
    const deadline = Date.now() + 20_000
    while (!ended && closeCodeIn(Buffer.concat(received)) === undefined && Date.now() < deadline) await sleep(50)
    expect(closeCodeIn(Buffer.concat(received))).toBe(4008)
    expect(await disconnects(url)).toBe(before + 1)
    socket.destroy()
  }, 60_000)
})

/** Slow-consumer closes of WebSockets counted so far. */
const disconnects = async (url: string): Promise<number> => {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split("\n").find((candidate) => candidate.startsWith('taskstream_disconnects_total{reason="slow_consumer",transport="ws"}'))
  return line === undefined ? 0 : Number(line.split(" ").at(-1))
}

describeEachRuntime("WebSocket shutdown", (runtime) => {
  it("closes open sockets with 1012 on SIGTERM so clients reconnect elsewhere", async () => {
    const { harness, stop } = await startHarness("memory", {}, runtime)
    const ws = await openWs(harness.url)
    ws.send({ op: "subscribe", sub: "s", agentId: AGENT, taskId: uniqueTask() })
    await ws.waitFor((frames) => frames.some((frame) => frame.op === "subscribed"))
    const closed = ws.closed
    await stop()
    expect((await closed).code).toBe(1012)
  })
})

describe("WebSocket subscriptions are released [memory log]", () => {
  let current: Awaited<ReturnType<typeof startHarness>>
  beforeAll(async () => {
    current = await startHarness("memory")
  })
  afterAll(() => current.stop())

  it("releases a subscription to an ended task (it ends while its history loads) and everything at socket close", async () => {
    const url = current.harness.url
    const task = uniqueTask()
    await postEvents(url, AGENT, task, [{ type: "WorkflowStepStarted", data: { step: 1 } }, { type: "WorkflowCompleted", data: {} }])
    const live = uniqueTask()
    const ws = await openWs(url)
    ws.send({ op: "subscribe", sub: "done", agentId: AGENT, taskId: task })
    ws.send({ op: "subscribe", sub: "open", agentId: AGENT, taskId: live })
    await ws.next((frame) => frame.op === "end" && frame.sub === "done")
    await ws.next((frame) => frame.op === "subscribed" && frame.sub === "open")
    const gauge = async (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(await (await fetch(`${url}/metrics`)).text())?.[1])
    expect(await gauge("taskstream_subscriptions")).toBe(1)
    expect(await gauge("taskstream_live_channels")).toBe(1)
    ws.close()
    await ws.closed
    // The server notices the close on its own turn: wait for the gauges rather than a fixed time.
    await eventually(async () => (await gauge("taskstream_subscriptions")) === 0 && (await gauge("taskstream_live_channels")) === 0, 5000, "gauges at zero")
  })
})

describe("WebSocket auth [memory log]", () => {
  const SECRET = "test-secret-0123456789"
  let current: Awaited<ReturnType<typeof startHarness>>
  beforeAll(async () => {
    current = await startHarness("memory", { AUTH_JWT_SECRET: SECRET, AUTH_FRAME_TIMEOUT_MS: "700" })
  })
  afterAll(() => current.stop())
  const token = (claims: Record<string, unknown>) => sign({ sub: "user-1", ...claims }, SECRET, "HS256")

  const upgradeHeaders = { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" }

  it("refuses the upgrade with an invalid token (401) and a plain GET without upgrade (426)", async () => {
    const now = Math.floor(Date.now() / 1000)
    const scopes = { taskstream: { subscribe: ["*/*"] } }
    const invalid = {
      malformed: "not-a-jwt",
      badSignature: await sign({ sub: "user-1", ...scopes }, "another-secret-entirely", "HS256"),
      wrongAlgorithm: await sign({ sub: "user-1", ...scopes }, SECRET, "HS384"),
      expired: await token({ ...scopes, exp: now - 10 }),
      notYetValid: await token({ ...scopes, nbf: now + 600 })
    }
    for (const [name, bad] of Object.entries(invalid)) {
      const refused = await fetch(`${current.harness.url}/api/v1/ws?access_token=${bad}`, { headers: upgradeHeaders })
      expect({ name, status: refused.status }).toEqual({ name, status: 401 })
    }
    expect((await fetch(`${current.harness.url}/api/v1/ws?access_token=${await token({})}`)).status).toBe(426)
  })

  it("closes a socket with 4001 when its token expires; a fresh token resumes it with nothing lost", async () => {
    const task = uniqueTask()
    const scopes = { taskstream: { subscribe: ["*/*"] } }
    const publisher = await token({ taskstream: { publish: ["*/*"] } })
    const publish = (steps: ReadonlyArray<number>) =>
      fetch(`${current.harness.url}/api/v1/agents/${AGENT}/tasks/${task}/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${publisher}` },
        body: JSON.stringify(steps.map((step) => ({ type: "WorkflowStepStarted", data: { step } })))
      })
    const shortLived = await token({ ...scopes, exp: Math.floor(Date.now() / 1000) + 2 })
    const ws = await openWs(current.harness.url, `?access_token=${shortLived}`)
    ws.send({ op: "subscribe", sub: "s", agentId: AGENT, taskId: task })
    expect((await publish([1])).status).toBe(201)
    const first = await ws.next((frame) => frame.op === "event")
    expect((await ws.closed).code).toBe(4001)
    expect((await publish([2, 3])).status).toBe(201)
    const fresh = await token({ ...scopes, exp: Math.floor(Date.now() / 1000) + 60 })
    const resumed = await openWs(current.harness.url, `?access_token=${fresh}`)
    resumed.send({ op: "subscribe", sub: "s", agentId: AGENT, taskId: task, since: first.event.id })
    const events = await resumed.waitFor((frames) => frames.filter((frame) => frame.op === "event").length === 2)
    expect(events.filter((frame) => frame.op === "event").map((frame) => frame.event.data.step)).toEqual([2, 3])
    resumed.close()
  })

  it("lets a socket opened without a token authenticate with a first auth frame", async () => {
    const ws = await openWs(current.harness.url)
    const ask = async (frame: Record<string, unknown>) => {
      const from = ws.frames.length
      ws.send(frame)
      return ws.next(() => true, from)
    }
    expect(await ask({ op: "ping", ref: "p" })).toMatchObject({ op: "pong", ref: "p" })
    expect(await ask({ op: "subscribe", sub: "early", agentId: AGENT, taskId: "t" })).toMatchObject({ op: "error", sub: "early", code: "unauthorized" })
    const bearer = await token({ taskstream: { subscribe: ["*/*"] }, exp: Math.floor(Date.now() / 1000) + 60 })
    expect(await ask({ op: "auth", token: bearer, ref: "a1" })).toMatchObject({ op: "authenticated", ref: "a1", subject: "user-1" })
    const authenticatedAt = Date.now()
    expect(await ask({ op: "subscribe", sub: "s1", agentId: AGENT, taskId: uniqueTask() })).toMatchObject({ op: "subscribed", sub: "s1" })
    // Past the AUTH_FRAME_TIMEOUT_MS deadline (700 ms), the socket still answers: the pong is the sentinel.
    await Bun.sleep(Math.max(0, authenticatedAt + 800 - Date.now()))
    expect(await ask({ op: "ping", ref: "after-deadline" })).toMatchObject({ op: "pong", ref: "after-deadline" })
    expect(ws.frames.some((frame) => frame.op === "error" && frame.code === "unauthorized" && frame.sub === undefined)).toBe(false)
    ws.close()
  })

  it("closes with 4001 a socket that sends no auth frame in time, or a refused one", async () => {
    const silent = await openWs(current.harness.url)
    expect(await silent.closed).toEqual({ code: 4001, reason: "authentication required" })
    const refused = await openWs(current.harness.url)
    refused.send({ op: "auth", token: await token({ exp: Math.floor(Date.now() / 1000) - 5 }) })
    const closed = await refused.closed
    expect(closed.code).toBe(4001)
    expect(refused.frames.at(-1)).toMatchObject({ op: "error", code: "unauthorized" })
  })

  it("refreshes the token of an open socket so it outlives the first token's expiry", async () => {
    // `exp` counts whole seconds: +2 leaves between 1 and 2 s, never the 0-1000 ms that +1 can.
    const expiresAt = (Math.floor(Date.now() / 1000) + 2) * 1000
    const soon = await token({ taskstream: { subscribe: ["*/*"] }, exp: expiresAt / 1000 })
    const ws = await openWs(current.harness.url, `?access_token=${soon}`)
    const later = await token({ taskstream: { subscribe: ["*/*"] }, exp: Math.floor(Date.now() / 1000) + 60 })
    ws.send({ op: "auth", token: later })
    await ws.next((frame) => frame.op === "authenticated")
    const other = await sign({ sub: "someone-else", exp: Math.floor(Date.now() / 1000) + 60 }, SECRET, "HS256")
    ws.send({ op: "auth", token: other, ref: "x" })
    expect(await ws.next((frame) => frame.ref === "x")).toMatchObject({ op: "error", code: "forbidden" })
    // Just past the first token's expiry: without the refresh the socket would be closed with 4001 by now.
    await Bun.sleep(Math.max(0, expiresAt + 200 - Date.now()))
    ws.send({ op: "ping", ref: "alive" })
    expect(await ws.next((frame) => frame.op === "pong" && frame.ref === "alive")).toBeDefined()
    ws.close()
  })

  it("checks each subscription and command against the token's scopes", async () => {
    const bearer = await token({ taskstream: { subscribe: ["agent-1/*"], control: ["agent-1/mine"] }, exp: Math.floor(Date.now() / 1000) + 60 })
    const ws = await openWs(`${current.harness.url}`, `?access_token=${bearer}`)
    const ask = async (frame: Record<string, unknown>) => {
      const from = ws.frames.length
      ws.send(frame)
      return ws.next(() => true, from)
    }
    expect(await ask({ op: "subscribe", sub: "ok", agentId: AGENT, taskId: uniqueTask() })).toMatchObject({ op: "subscribed", sub: "ok" })
    expect(await ask({ op: "subscribe", sub: "no", agentId: "agent-2", taskId: "t" })).toMatchObject({ op: "error", sub: "no", code: "forbidden" })
    expect(await ask({ op: "command", ref: "c1", agentId: AGENT, taskId: "mine", command: "pause" })).toMatchObject({ op: "ack", ref: "c1" })
    expect(await ask({ op: "command", ref: "c2", agentId: AGENT, taskId: "other", command: "pause" })).toMatchObject({ op: "error", ref: "c2", code: "forbidden" })
    ws.close()
    const rest = (taskId: string) =>
      fetch(`${current.harness.url}/api/v1/agents/${AGENT}/tasks/${taskId}/cancel`, { method: "POST", headers: { authorization: `Bearer ${bearer}` } })
    expect((await rest("mine")).status).toBe(202)
    expect((await rest("other")).status).toBe(403)
  })
})
