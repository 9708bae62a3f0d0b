/** Connection limits, ingest rate and CORS (SPEC §6), with the metrics they move. */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { postEvents, step, taskPath } from "../support/api.ts"
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
    await Bun.sleep(100)
    const again = await openSse(url, await as("dave"))
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
  let gateway: Gateway
  beforeAll(async () => {
    gateway = await startGateway({ PUBLISH_RATE: "20", CORS_ORIGINS: "https://app.example" })
  })
  afterAll(() => gateway.stop())

  it("answers 429 with Retry-After once a subject publishes over PUBLISH_RATE events per second", async () => {
    const task = uniqueTask()
    const first = await postEvents(gateway.url, "agent-1", task, Array.from({ length: 15 }, (_, i) => step(i)))
    expect(first.status).toBe(201)
    const over = await postEvents(gateway.url, "agent-1", task, Array.from({ length: 15 }, (_, i) => step(i)))
    expect(over.status).toBe(429)
    expect(over.body.code).toBe("rate_limited")
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    await Bun.sleep(1100)
    expect((await postEvents(gateway.url, "agent-1", task, step(99))).status).toBe(201)
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text()
    expect(metricValue(metrics, "taskstream_limit_rejections_total", 'limit="publish_rate"')).toBe(1)
    expect(metrics).toMatch(/^taskstream_events_appended_total 16$/m)
  })

  it("answers CORS preflights for the configured origins only", async () => {
    const preflight = (origin: string) =>
      fetch(`${gateway.url}/api/v1/tasks`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization" }
      })
    expect((await preflight("https://app.example")).headers.get("access-control-allow-origin")).toBe("https://app.example")
    expect((await preflight("https://evil.example")).headers.get("access-control-allow-origin")).toBeNull()
  })
})
