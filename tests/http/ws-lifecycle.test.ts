import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { connect, type Socket } from "node:net"
import { sign } from "hono/jwt"
import { postEvents } from "../support/api.ts"
import { startHarness, uniqueTask } from "../support/harness.ts"
import { sleep } from "../support/ports.ts"
import { openWs } from "../support/ws.ts"

const AGENT = "agent-1"

/** A WebSocket client on a bare TCP socket, so the test decides when it reads. */
const rawWebSocket = async (baseUrl: string): Promise<Socket> => {
  const { hostname, port } = new URL(baseUrl)
  const socket = connect(Number(port), hostname)
  await new Promise((resolve) => socket.once("connect", resolve))
  socket.write(
    "GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
  )
  return socket
}

/** A client → server text frame (masked, as the protocol requires). */
const clientFrame = (text: string): Buffer => {
  const payload = Buffer.from(text)
  const header = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255])
  return Buffer.concat([header, Buffer.alloc(4), payload])
}

/** The close code in the server's frames (after the HTTP 101 response), if a close frame came. */
const closeCodeIn = (bytes: Buffer): number | undefined => {
  let offset = bytes.indexOf("\r\n\r\n") + 4
  while (offset + 2 <= bytes.length) {
    const opcode = bytes[offset] & 0x0f
    let length = bytes[offset + 1] & 0x7f
    offset += 2
    if (length === 126) {
      length = bytes.readUInt16BE(offset)
      offset += 2
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(offset))
      offset += 8
    }
    if (opcode === 0x8) return bytes.readUInt16BE(offset)
    offset += length
  }
  return undefined
}

describe("WebSocket slow consumer [memory log]", () => {
  let current: Awaited<ReturnType<typeof startHarness>>
  beforeAll(async () => {
    current = await startHarness("memory", { CLIENT_BUFFER_BYTES: "65536" })
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
    const deadline = Date.now() + 20_000
    while (!ended && Date.now() < deadline) await sleep(50)
    expect(ended).toBe(true)
    const bytes = Buffer.concat(received)
    expect(bytes.length).toBeLessThan(30_000_000)
    expect(closeCodeIn(bytes)).toBe(4008)
  }, 60_000)
})

describe("WebSocket shutdown [memory log]", () => {
  it("closes open sockets with 1012 on SIGTERM so clients reconnect elsewhere", async () => {
    const { harness, stop } = await startHarness("memory")
    const ws = await openWs(harness.url)
    ws.send({ op: "subscribe", sub: "s", agentId: AGENT, taskId: uniqueTask() })
    await ws.waitFor((frames) => frames.some((frame) => frame.op === "subscribed"))
    const closed = ws.closed
    await stop()
    expect((await closed).code).toBe(1012)
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
    const refused = await fetch(`${current.harness.url}/api/v1/ws?access_token=not-a-jwt`, { headers: upgradeHeaders })
    expect(refused.status).toBe(401)
    expect((await fetch(`${current.harness.url}/api/v1/ws?access_token=${await token({})}`)).status).toBe(426)
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
    expect(await ask({ op: "subscribe", sub: "s1", agentId: AGENT, taskId: uniqueTask() })).toMatchObject({ op: "subscribed", sub: "s1" })
    await Bun.sleep(900)
    expect(ws.frames.some((frame) => frame.op === "error" && frame.code === "unauthorized" && frame.sub === undefined)).toBe(false)
    ws.close()
  })

  it("closes with 4001 a socket that sends no auth frame in time, or a refused one", async () => {
    const silent = await openWs(current.harness.url)
    expect((await silent.closed).code).toBe(4001)
    const refused = await openWs(current.harness.url)
    refused.send({ op: "auth", token: await token({ exp: Math.floor(Date.now() / 1000) - 5 }) })
    const closed = await refused.closed
    expect(closed.code).toBe(4001)
    expect(refused.frames.at(-1)).toMatchObject({ op: "error", code: "unauthorized" })
  })

  it("refreshes the token of an open socket so it outlives the first token's expiry", async () => {
    const soon = await token({ taskstream: { subscribe: ["*/*"] }, exp: Math.floor(Date.now() / 1000) + 1 })
    const ws = await openWs(current.harness.url, `?access_token=${soon}`)
    const later = await token({ taskstream: { subscribe: ["*/*"] }, exp: Math.floor(Date.now() / 1000) + 60 })
    ws.send({ op: "auth", token: later })
    await ws.next((frame) => frame.op === "authenticated")
    const other = await sign({ sub: "someone-else", exp: Math.floor(Date.now() / 1000) + 60 }, SECRET, "HS256")
    ws.send({ op: "auth", token: other, ref: "x" })
    expect(await ws.next((frame) => frame.ref === "x")).toMatchObject({ op: "error", code: "forbidden" })
    await Bun.sleep(2200)
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
