/** Connection limits, ingest rate and CORS (SPEC §6), with the metrics they move. */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { step, taskPath } from "../support/api.ts"
import { startApp, type TestApp } from "../support/app.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { openSse, type SseStream } from "../support/sse.ts"
import { openWs } from "../support/ws.ts"
import { hsToken, SECRET } from "../support/tokens.ts"

const metricValue = (text: string, name: string, labels: string) =>
  Number(new RegExp(`^${name}\\{${labels}\\} (\\d+(?:\\.\\d+)?)$`, "m").exec(text)?.[1] ?? "NaN")

describe("Connection limits", () => {
  let gateway: Gateway
  beforeAll(async () => {
    gateway = await startGateway({ MAX_CONNECTIONS: "4", MAX_CONNECTIONS_PER_SUBJECT: "2", AUTH_JWT_SECRET: SECRET })
  })
  afterAll(() => gateway.stop())

  it("refuses the subject's third stream with 429 and the instance's fifth with 503, both with Retry-After", async () => {
    const url = `${gateway.url}${taskPath("agent-1", uniqueTask())}/events/stream`
    const as = async (subject: string) => ({ authorization: `Bearer ${await hsToken({ subscribe: ["*/*"] }, { sub: subject })}` })
    const open: Array<SseStream> = []
    for (const subject of ["alice", "alice"]) open.push(await openSse(url, await as(subject)))
    const third = await fetch(url, { headers: await as("alice") })
    expect(third.status).toBe(429)
    expect(third.headers.get("retry-after")).toBe("1")
    expect((await third.json()).code).toBe("too_many_connections_per_subject")
    for (const subject of ["bob", "carol"]) open.push(await openSse(url, await as(subject)))
    const fifth = await fetch(url, { headers: await as("dave") })
    expect(fifth.status).toBe(503)
    expect((await fifth.json()).code).toBe("too_many_connections")
    expect(open.every((stream) => stream.status === 200)).toBe(true)
    open.pop()!.close()
    // The server releases the place when it notices the close: retry until it has, not after a fixed time.
    let again = await openSse(url, await as("dave"))
    for (let i = 0; again.status !== 200 && i < 50; i++) {
      again.close()
      await Bun.sleep(20)
      again = await openSse(url, await as("dave"))
    }
    expect(again.status).toBe(200)
    again.close()
    for (const stream of open) stream.close()
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text()
    expect(metricValue(metrics, "taskstream_limit_rejections_total", 'limit="max_connections_per_subject"')).toBe(1)
    expect(metricValue(metrics, "taskstream_limit_rejections_total", 'limit="max_connections"')).toBe(1)
  })

  it("counts WebSockets still waiting for their auth frame, under their client address, until they authenticate", async () => {
    const upgrade = { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" }
    const pending = [await openWs(gateway.url), await openWs(gateway.url)]
    const third = await fetch(`${gateway.url}/api/v1/ws`, { headers: upgrade })
    expect(third.status).toBe(429)
    pending[0].send({ op: "auth", token: await hsToken({ subscribe: ["*/*"] }, { sub: "erin" }) })
    await pending[0].next((frame) => frame.op === "authenticated")
    const next = await openWs(gateway.url)
    next.send({ op: "ping", ref: "p" })
    expect(await next.next((frame) => frame.op === "pong")).toMatchObject({ ref: "p" })
    for (const socket of [...pending, next]) socket.close()
  })
})

describe("Ingest rate and CORS", () => {
  let gateway: TestApp
  beforeAll(async () => {
    gateway = await startApp({ publishRate: 20, corsOrigins: "https://app.example" })
  })
  afterAll(() => gateway.close())

  const publish = async (task: string, body: unknown) => {
    const response = await gateway.request(`${taskPath("agent-1", task)}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    })
    return { status: response.status, body: (await response.json()) as { code?: string }, headers: response.headers }
  }

  it("answers 429 with Retry-After once a subject publishes over PUBLISH_RATE events per second", async () => {
    const task = uniqueTask()
    // Metrics are per process and other in-process apps may count too: compare before and after.
    const counted = async () => {
      const metrics = await (await gateway.request("/metrics")).text()
      return {
        rejected: metricValue(metrics, "taskstream_limit_rejections_total", 'limit="publish_rate"') || 0,
        appended: Number(/^taskstream_events_appended_total (\d+)$/m.exec(metrics)?.[1] ?? "0")
      }
    }
    const before = await counted()
    const first = await publish(task, Array.from({ length: 15 }, (_, i) => step(i)))
    expect(first.status).toBe(201)
    const over = await publish(task, Array.from({ length: 15 }, (_, i) => step(i)))
    expect(over.status).toBe(429)
    expect(over.body.code).toBe("rate_limited")
    const retryAfter = Number(over.headers.get("retry-after"))
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    // As told: after Retry-After the subject may publish again.
    await Bun.sleep(retryAfter * 1000 + 100)
    expect((await publish(task, step(99))).status).toBe(201)
    const after = await counted()
    expect({ rejected: after.rejected - before.rejected, appended: after.appended - before.appended }).toEqual({ rejected: 1, appended: 16 })
  })

  it("answers CORS preflights for the configured origins only", async () => {
    const preflight = (origin: string) =>
      gateway.request("/api/v1/tasks", {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization" }
      })
    expect((await preflight("https://app.example")).headers.get("access-control-allow-origin")).toBe("https://app.example")
    expect((await preflight("https://evil.example")).headers.get("access-control-allow-origin")).toBeNull()
  })
})
