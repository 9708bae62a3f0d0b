/**
 * The holes a security probe found (issue 16), each tried as the attacker
 * would — the request they send — with the refusal or bound expected. Through
 * `app.request()` on the memory log; the attacks that need a real socket or a
 * real Redis are in security-gateway.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { ConfigProvider, Effect, Layer, Redacted } from "effect"
import { AppConfig } from "../../src/config.ts"
import { compileScope } from "../../src/http/auth.ts"
import { decodeClientFrame } from "../../src/http/wsProtocol.ts"
import { taskPath } from "../support/api.ts"
import { type InProcessApp, startApp } from "../support/app.ts"
import { hsToken, SECRET } from "../support/tokens.ts"

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: typeof body === "string" ? body : JSON.stringify(body)
})

const started = (goal = "g") => ({ type: "WorkflowStarted", data: { goal } })

/** Runs `attack` and its wall time; the bound is generous: a backtracking regex took 17 s. */
const timed = async <A>(attack: () => Promise<A>) => {
  const at = performance.now()
  const result = await attack()
  return { result, ms: performance.now() - at }
}

const withApp = (overrides: Parameters<typeof startApp>[0]) => {
  let current: InProcessApp | undefined
  beforeAll(async () => {
    current = await startApp(overrides)
  })
  afterAll(() => current?.close())
  return () => current!
}

describe("Scope wildcards", () => {
  it("match `*` within one segment", () => {
    const cases: Array<[string, string, string, boolean]> = [
      ["agent-1/job-*", "agent-1", "job-42", true],
      ["agent-1/job-*", "agent-1", "job-", true],
      ["agent-1/job-*", "agent-1", "task-1", false],
      ["*/*", "a", "b", true],
      ["a*b*c/x", "aXbYc", "x", true],
      ["a*b*c/x", "abc", "x", true],
      ["a*b*c/x", "acb", "x", false],
      ["a*a/x", "a", "x", false],
      ["*-x/t", "a-x-x", "t", true],
      ["agent-1/t", "agent-1", "t", true],
      ["agent-1/t", "agent-10", "t", false]
    ]
    for (const [pattern, agentId, taskId, expected] of cases) {
      expect({ pattern, agentId, taskId, matches: compileScope(pattern)!(agentId, taskId) }).toEqual({ pattern, agentId, taskId, matches: expected })
    }
    expect(compileScope("no-slash")).toBeUndefined()
  })

  describe("against a token built to backtrack", () => {
    const app = withApp({ authJwtSecret: Redacted.make(SECRET) })
    const evil = "*-".repeat(12) + "*/x"
    const dashes = "-".repeat(80)

    it("answers a request for an 80-dash agent id at once", async () => {
      const token = await hsToken({ subscribe: [evil] })
      const { result, ms } = await timed(() =>
        app().request(`${taskPath(dashes, "y")}/events`, { headers: { authorization: `Bearer ${token}` } })
      )
      expect(result.status).toBe(403)
      expect(ms).toBeLessThan(1000)
    })

    it("lets no planted agent id slow another user's GET /tasks", async () => {
      const publisher = await hsToken({ publish: ["*/*"] })
      for (let i = 0; i < 20; i++) {
        const planted = await app().request(`${taskPath(`${dashes}${i}`, `planted-${i}`)}/events`, json(started(), { authorization: `Bearer ${publisher}` }))
        expect(planted.status).toBe(201)
      }
      const reader = await hsToken({ subscribe: [evil.replace("/x", "/*")] })
      const { result, ms } = await timed(() => app().request("/api/v1/tasks?limit=1000", { headers: { authorization: `Bearer ${reader}` } }))
      expect(result.status).toBe(200)
      expect(ms).toBeLessThan(1000)
    })
  })
})

describe("Deeply nested JSON", () => {
  const app = withApp({})

  it("is refused 400 before parsing, and stores nothing", async () => {
    const task = `deep-${Date.now()}`
    const body = `{"type":"WorkflowStarted","data":{"goal":${"[".repeat(100_000)}${"]".repeat(100_000)}}}`
    const { result, ms } = await timed(() => app().request(`${taskPath("a", task)}/events`, json(body)))
    expect(result.status).toBe(400)
    expect(await result.json()).toMatchObject({ code: "invalid_json", field: "body" })
    expect(ms).toBeLessThan(1000)
    const stored = await app().request(`${taskPath("a", task)}/events`)
    expect((await stored.json()).events).toEqual([])
  })

  it("is refused in a control command body and a WebSocket frame", async () => {
    const command = await app().request(`${taskPath("a", "t")}/cancel`, json(`{"reason":${"[".repeat(5000)}${"]".repeat(5000)}}`))
    expect(command.status).toBe(400)
    expect(await command.json()).toMatchObject({ code: "invalid_json", field: "body" })
    const frame = decodeClientFrame(`{"op":"ping","x":${"{\"a\":".repeat(20_000)}1${"}".repeat(20_000)}}`)
    expect(frame).toMatchObject({ failure: { code: "invalid_json" } })
  })

  it("passes nesting within the limit, brackets inside strings not counted", async () => {
    const data = { goal: "[[[[{{{{".repeat(100), nested: JSON.parse(`${"[".repeat(40)}1${"]".repeat(40)}`) }
    const response = await app().request(`${taskPath("a", `ok-${Date.now()}`)}/events`, json({ type: "WorkflowStarted", data }))
    expect(response.status).toBe(201)
  })
})

describe("Data the log cannot store", () => {
  const app = withApp({})

  it("refuses a lone surrogate 400 naming data, in one event or a batch", async () => {
    const single = await app().request(`${taskPath("a", "s1")}/events`, json('{"type":"WorkflowStarted","data":{"goal":"\\ud800"}}'))
    expect(single.status).toBe(400)
    expect(await single.json()).toMatchObject({ code: "invalid_event", field: "data" })
    const batch = await app().request(
      `${taskPath("a", "s2")}/events`,
      json('[{"type":"WorkflowStarted","data":{}},{"type":"WorkflowStarted","data":{"\\udfffkey":1}}]')
    )
    expect(await batch.json()).toMatchObject({ code: "invalid_event", field: "[1].data" })
  })

  it("keeps paired surrogates (emoji) and an escaped backslash before u", async () => {
    const response = await app().request(`${taskPath("a", "s3")}/events`, json({ type: "WorkflowStarted", data: { goal: "😀 \\ud800" } }))
    expect(response.status).toBe(201)
  })

  it("refuses a nonsense time 400 naming time", async () => {
    for (const time of ["9999-99-99T99:99:99.999Z", "2026-02-30T10:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T10:00:00+25:00"]) {
      const response = await app().request(`${taskPath("a", "time")}/events`, json({ ...started(), time }))
      expect({ time, status: response.status, body: await response.json() }).toMatchObject({ time, status: 400, body: { field: "time" } })
    }
    const real = await app().request(`${taskPath("a", "time")}/events`, json({ ...started(), time: "2024-02-29T23:59:59.5+05:30" }))
    expect(real.status).toBe(201)
  })
})

describe("Safe defaults", () => {
  const read = (env: Record<string, string>) =>
    Effect.runPromise(Effect.provide(Effect.gen(function*() { return yield* AppConfig }), AppConfig.layer.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))))

  it("turns connection, publish and command limits on with NODE_ENV=production", async () => {
    const production = await read({ NODE_ENV: "production", AUTH: "none" })
    expect(production.maxConnections).toBeGreaterThan(0)
    expect(production.maxConnectionsPerSubject).toBeGreaterThan(0)
    expect(production.publishRate).toBeGreaterThan(0)
    expect(production.commandRate).toBeGreaterThan(0)
    expect(production.tasksPerHour).toBeGreaterThan(0)
    const explicit = await read({ NODE_ENV: "production", MAX_CONNECTIONS_PER_SUBJECT: "0", COMMAND_RATE: "5" })
    expect({ perSubject: explicit.maxConnectionsPerSubject, commands: explicit.commandRate }).toEqual({ perSubject: 0, commands: 5 })
    const development = await read({})
    expect(development.maxConnections).toBe(0)
  })

  describe("COMMAND_RATE", () => {
    const app = withApp({ commandRate: 3 })

    it("refuses a flood of cancels from one client 429 with Retry-After", async () => {
      const statuses: Array<number> = []
      let last: Response | undefined
      for (let i = 0; i < 10; i++) {
        last = await app().request(`${taskPath("a", `flood-${i}`)}/cancel`, { method: "POST" }, "198.51.100.1")
        statuses.push(last.status)
      }
      expect(statuses.filter((status) => status === 202)).toHaveLength(3)
      expect(statuses.slice(3).every((status) => status === 429)).toBe(true)
      expect(last!.headers.get("retry-after")).toMatch(/^\d+$/)
      expect(await last!.json()).toMatchObject({ code: "rate_limited" })
      const other = await app().request(`${taskPath("a", "other")}/cancel`, { method: "POST" }, "198.51.100.2")
      expect(other.status).toBe(202)
    })
  })
})

describe("TASKS_PER_HOUR", () => {
  const app = withApp({ tasksPerHour: 5 })

  it("stops one client from creating tasks without bound, and never refuses its existing tasks", async () => {
    const statuses: Array<number> = []
    for (let i = 0; i < 20; i++) {
      statuses.push((await app().request(`${taskPath("a", `spawn-${i}`)}/events`, json(started()), "198.51.100.7")).status)
    }
    expect(statuses).toEqual([...Array(5).fill(201), ...Array(15).fill(429)])
    const refused = await app().request(`${taskPath("a", "spawn-99")}/events`, json(started()), "198.51.100.7")
    expect(await refused.json()).toMatchObject({ code: "too_many_tasks", field: "taskId" })
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0)
    const stored = await app().request(`${taskPath("a", "spawn-99")}/events`)
    expect((await stored.json()).events).toEqual([])
    const again = await app().request(`${taskPath("a", "spawn-0")}/events`, json({ type: "WorkflowStepStarted", data: { step: 1 } }), "198.51.100.7")
    expect(again.status).toBe(201)
    expect((await app().request(`${taskPath("a", "other-client")}/events`, json(started()), "198.51.100.8")).status).toBe(201)
  })
})

describe("TRUST_PROXY", () => {
  const app = withApp({ trustProxy: true, publishRate: 3 })

  it("takes the right-most X-Forwarded-For hop, so a client cannot pick its own address", async () => {
    let accepted = 0
    for (let i = 0; i < 30; i++) {
      // What nginx with $proxy_add_x_forwarded_for passes on: the client's own header, then the address it saw.
      const response = await app().request(
        `${taskPath("a", `xff-${i}`)}/events`,
        json(started(), { "x-forwarded-for": `10.0.${i}.1, 203.0.113.9` })
      )
      if (response.status === 201) accepted++
    }
    expect(accepted).toBe(3)
  })
})

describe("Tokens", () => {
  const app = withApp({ authJwtSecret: Redacted.make(SECRET), authRequireExp: true, authRequireSub: true, authClockSkewSeconds: 5 })
  const now = () => Math.floor(Date.now() / 1000)
  const status = async (token: string) =>
    (await app().request(`${taskPath("a", "t")}/events`, { headers: { authorization: `Bearer ${token}` } })).status
  const scopes = { subscribe: ["*/*"] }

  it("AUTH_REQUIRE_EXP refuses a token that never expires", async () => {
    const response = await app().request(`${taskPath("a", "t")}/events`, {
      headers: { authorization: `Bearer ${await hsToken(scopes, { exp: undefined })}` }
    })
    expect(response.status).toBe(401)
    expect((await response.json()).message).toContain("no exp claim")
  })

  it("AUTH_REQUIRE_SUB refuses a token without a subject", async () => {
    expect(await status(await hsToken(scopes, { sub: undefined }))).toBe(401)
    expect(await status(await hsToken(scopes))).toBe(200)
  })

  it("AUTH_CLOCK_SKEW_S forgives a few seconds of drift, not more", async () => {
    expect(await status(await hsToken(scopes, { exp: now() - 2 }))).toBe(200)
    expect(await status(await hsToken(scopes, { exp: now() - 30 }))).toBe(401)
    expect(await status(await hsToken(scopes, { nbf: now() + 2 }))).toBe(200)
    expect(await status(await hsToken(scopes, { nbf: now() + 60 }))).toBe(401)
  })
})

describe("Open mode from another site's page", () => {
  const app = withApp({})
  const evil = { origin: "http://evil.example" }

  it("refuses a WebSocket upgrade from another origin", async () => {
    const response = await app().request("http://localhost/api/v1/ws", {
      headers: { upgrade: "websocket", connection: "upgrade", ...evil, host: "localhost" }
    })
    expect(response.status).toBe(403)
    expect(await response.json()).toMatchObject({ code: "forbidden", field: "origin" })
  })

  it("refuses a text/plain cancel (a CORS-simple request) and a cross-site JSON one", async () => {
    const plain = await app().request(`http://localhost${taskPath("a", "t")}/cancel`, {
      method: "POST",
      headers: { "content-type": "text/plain", ...evil },
      body: '{"reason":"x"}'
    })
    expect(plain.status).toBe(403)
    const plainSameSite = await app().request(`${taskPath("a", "t")}/cancel`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: '{"reason":"x"}'
    })
    expect(plainSameSite.status).toBe(415)
    const demo = await app().request("/api/v1/demo", { method: "POST", headers: { "content-type": "text/plain" } })
    expect(demo.status).toBe(415)
    const crossSite = await app().request(`http://localhost${taskPath("a", "t")}/pause`, json({}, { ...evil, host: "localhost" }))
    expect(crossSite.status).toBe(403)
    const sameSite = await app().request(`http://localhost${taskPath("a", "t")}/pause`, json({}, { origin: "http://localhost", host: "localhost" }))
    expect(sameSite.status).toBe(202)
  })

  it("still serves reads to any origin (CORS decides who sees them)", async () => {
    expect((await app().request(`${taskPath("a", "t")}/events`, { headers: evil })).status).toBe(200)
  })
})

describe("METRICS_TOKEN", () => {
  const app = withApp({ metricsToken: Redacted.make("scrape-me") })

  it("keeps /metrics from anyone without it", async () => {
    expect((await app().request("/metrics")).status).toBe(401)
    expect((await app().request("/metrics", { headers: { authorization: "Bearer scrape-mf" } })).status).toBe(401)
    const scraped = await app().request("/metrics", { headers: { authorization: "Bearer scrape-me" } })
    expect(scraped.status).toBe(200)
    expect(await scraped.text()).toContain("taskstream_")
  })
})

describe("Security headers", () => {
  const app = withApp({})

  it("forbid framing and foreign scripts on the dashboard, and referrers everywhere", async () => {
    const page = await app().request("/")
    expect(page.headers.get("x-frame-options")).toBe("DENY")
    expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'")
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'")
    for (const path of ["/", "/healthz", `${taskPath("a", "t")}/events`]) {
      const response = await app().request(path)
      expect(response.headers.get("referrer-policy")).toBe("no-referrer")
      expect(response.headers.get("x-content-type-options")).toBe("nosniff")
    }
  })
})
