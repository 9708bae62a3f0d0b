/**
 * The attacks of issue 16 that need real sockets or a real Redis: idle
 * sockets and bodies that never come against a Bun gateway, data Redis's Lua
 * decoder refuses, tasks that never end, and a WebSocket whose refreshed token
 * allows less.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { connect, type Socket } from "node:net"
import { appendErrorOf, defineScripts, runAppend } from "../../src/log/appendScript.ts"
import { postEvents, step, taskPath } from "../support/api.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { useHarness, uniqueTask } from "../support/harness.ts"
import { openSse } from "../support/sse.ts"
import { hsToken, SECRET } from "../support/tokens.ts"
import { openWs } from "../support/ws.ts"
import { builtinRegistry } from "../../src/events/registry.ts"

/** A bare TCP connection to the gateway that records when the server closed it. */
const rawSocket = async (url: string) => {
  const { hostname, port } = new URL(url)
  const socket: Socket = connect(Number(port), hostname)
  await new Promise((resolve) => socket.once("connect", resolve))
  let received = ""
  socket.on("data", (chunk) => (received += chunk.toString()))
  const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(performance.now())))
  socket.on("error", () => {})
  return { socket, closed, received: () => received, openedAt: performance.now() }
}

describe("HTTP idle timeout [bun]", () => {
  let gateway: Gateway
  beforeAll(async () => {
    gateway = await startGateway({ HTTP_IDLE_TIMEOUT_S: "1", HEARTBEAT_MS: "60000" })
  })
  afterAll(() => gateway.stop())

  it("closes a POST whose body never arrives", async () => {
    const client = await rawSocket(gateway.url)
    client.socket.write(`POST ${taskPath("a", "slow-body")}/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`)
    const closedAt = await Promise.race([client.closed, Bun.sleep(15_000).then(() => undefined)])
    expect(closedAt).toBeDefined()
    expect(closedAt! - client.openedAt).toBeLessThan(12_000)
  }, 20_000)

  it("closes an idle keep-alive socket", async () => {
    const client = await rawSocket(gateway.url)
    client.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    const closedAt = await Promise.race([client.closed, Bun.sleep(15_000).then(() => undefined)])
    expect(client.received()).toContain("200 OK")
    expect(closedAt).toBeDefined()
  }, 20_000)

  it("keeps a quiet SSE stream open past the idle timeout", async () => {
    const task = uniqueTask("quiet")
    const stream = await openSse(`${gateway.url}${taskPath("a", task)}/events/stream`)
    // An idle socket opened alongside: once the gateway has closed it, the stream has been as idle for as long.
    const idle = await rawSocket(gateway.url)
    idle.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await idle.closed
    expect((await postEvents(gateway.url, "a", task, step(1))).status).toBe(201)
    await stream.waitFor((all) => all.some((frame) => frame.event === "WorkflowStepStarted"), 5000)
    stream.close()
  }, 20_000)
})

describe("Redis log: what its script refuses", () => {
  const h = useHarness("redis", { TASK_IDLE_TTL_S: "120", RETENTION_S: "600" })

  it("answers a lone surrogate and excessive nesting 400, not 503", async () => {
    const task = uniqueTask("surrogate")
    const lone = await postEvents(h().url, "a", task, '{"type":"WorkflowStarted","data":{"goal":"\\ud800"}}')
    expect({ status: lone.status, code: lone.body.code, field: lone.body.field }).toEqual({ status: 400, code: "invalid_event", field: "data" })
    const deep = await postEvents(h().url, "a", task, `{"type":"WorkflowStarted","data":{"goal":${"[".repeat(1001)}${"]".repeat(1001)}}}`)
    expect({ status: deep.status, code: deep.body.code }).toEqual({ status: 400, code: "invalid_json" })
    expect(await h().redis!.client.exists(`ts:{${task}}:log`)).toBe(0)
  })

  it("reads the script's own refusal of such data as the client's error", async () => {
    const client = h().redis!.client
    defineScripts(client)
    const settings = { registry: builtinRegistry, prefix: "ts", historyMax: 100, retentionSeconds: 60, idempotencySeconds: 60, inflightSeconds: 60, taskIndexMax: 100, taskIdleSeconds: 0 }
    const refused = await runAppend(client, settings, { agentId: "a", taskId: uniqueTask("lua") }, [
      { type: "WorkflowStarted", data: {}, dataJson: '{"goal":"\\ud800"}' }
    ]).then(() => undefined, (error: unknown) => error)
    expect(appendErrorOf(refused, { agentId: "a", taskId: "t" })).toMatchObject({ _tag: "InvalidEvent", field: "data" })
  })

  it("expires a task that never ends after TASK_IDLE_TTL_S, and an ended one after RETENTION_S", async () => {
    const task = uniqueTask("idle")
    expect((await postEvents(h().url, "a", task, step(1))).status).toBe(201)
    const idle = await h().redis!.client.ttl(`ts:{${task}}:log`)
    expect(idle).toBeGreaterThan(100)
    expect(idle).toBeLessThanOrEqual(120)
    expect((await postEvents(h().url, "a", task, { type: "WorkflowCompleted", data: {} })).status).toBe(201)
    expect(await h().redis!.client.ttl(`ts:{${task}}:log`)).toBeGreaterThan(500)
  })
})

describe("WebSocket token refresh with narrower scopes", () => {
  const h = useHarness("memory", { AUTH_JWT_SECRET: SECRET })

  it("closes the subscriptions the new token no longer allows", async () => {
    const [kept, dropped] = [uniqueTask("kept"), uniqueTask("dropped")]
    const wide = await hsToken({ subscribe: ["agent-1/*"], publish: ["agent-1/*"] })
    const narrow = await hsToken({ subscribe: [`agent-1/${kept}`] })
    const ws = await openWs(h().url, `?access_token=${wide}`)
    ws.send({ op: "subscribe", sub: "s-kept", agentId: "agent-1", taskId: kept })
    ws.send({ op: "subscribe", sub: "s-dropped", agentId: "agent-1", taskId: dropped })
    await ws.waitFor((frames) => frames.filter((frame) => frame.op === "subscribed").length === 2)
    ws.send({ op: "auth", token: narrow })
    const refusal = await ws.next((frame) => frame.op === "error" && frame.sub === "s-dropped")
    expect(refusal.code).toBe("forbidden")
    ws.send({ op: "unsubscribe", sub: "s-dropped" })
    expect((await ws.next((frame) => frame.op === "error" && frame.code === "unknown_sub")).sub).toBe("s-dropped")
    const publish = (task: string) =>
      fetch(`${h().url}${taskPath("agent-1", task)}/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${wide}` },
        body: JSON.stringify(step(1))
      })
    expect((await publish(dropped)).status).toBe(201)
    expect((await publish(kept)).status).toBe(201)
    await ws.next((frame) => frame.op === "event" && frame.sub === "s-kept")
    expect(ws.frames.some((frame) => frame.op === "event" && frame.sub === "s-dropped")).toBe(false)
    ws.close()
  })
})
