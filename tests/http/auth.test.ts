/**
 * Authentication and scopes (SPEC §6) over SSE, history and ingest: the
 * token's sources, its failures, wildcard scopes, expiry of open streams,
 * and the three verifiers (secret, public key, JWKS).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { step, taskPath } from "../support/api.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventFrames, openSse } from "../support/sse.ts"
import { hsToken, rsaKeys, SECRET, serveJwks } from "../support/tokens.ts"

const AGENT = "agent-1"

const request = (gateway: Gateway, route: "stream" | "history" | "ingest", agent: string, task: string, init: { token?: string; query?: string; headers?: Record<string, string> } = {}) => {
  const base = `${gateway.url}${taskPath(agent, task)}`
  const url = route === "stream" ? `${base}/events/stream` : `${base}/events`
  const headers: Record<string, string> = { ...init.headers, ...(init.token === undefined ? {} : { authorization: `Bearer ${init.token}` }) }
  const query = init.query ?? ""
  if (route === "ingest") {
    return fetch(`${url}${query}`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(step(1)) })
  }
  return fetch(`${url}${query}`, { headers })
}

const statusOf = async (response: Promise<Response>) => {
  const answered = await response
  const status = answered.status
  await answered.body?.cancel()
  return status
}

describe("JWT auth with a shared secret (HS256)", () => {
  let gateway: Gateway
  beforeAll(async () => {
    gateway = await startGateway({ AUTH_JWT_SECRET: SECRET, HEARTBEAT_MS: "200" })
  })
  afterAll(() => gateway.stop())

  const everywhere = async (token: string | undefined, agent = AGENT, task = uniqueTask()) => ({
    ingest: await statusOf(request(gateway, "ingest", agent, task, token === undefined ? {} : { token })),
    history: await statusOf(request(gateway, "history", agent, task, token === undefined ? {} : { token })),
    stream: await statusOf(request(gateway, "stream", agent, task, token === undefined ? {} : { token }))
  })

  const all = { subscribe: ["*/*"], publish: ["*/*"], control: ["*/*"] }

  it("answers 401 on every route without a token, with a bad signature, a wrong algorithm, when expired or not yet valid", async () => {
    const now = Math.floor(Date.now() / 1000)
    const refused = { ingest: 401, history: 401, stream: 401 }
    expect(await everywhere(undefined)).toEqual(refused)
    expect(await everywhere("not-a-jwt")).toEqual(refused)
    expect(await everywhere(await hsToken(all, {}, "another-secret-entirely-different"))).toEqual(refused)
    expect(await everywhere(await hsToken(all, {}, SECRET, "HS384"))).toEqual(refused)
    expect(await everywhere(await hsToken(all, { exp: now - 10 }))).toEqual(refused)
    expect(await everywhere(await hsToken(all, { nbf: now + 600 }))).toEqual(refused)
    const unsigned = `${btoa(JSON.stringify({ alg: "none", typ: "JWT" }))}.${btoa(JSON.stringify({ taskstream: all }))}.`
    expect(await everywhere(unsigned)).toEqual(refused)
    const body = await (await request(gateway, "history", AGENT, uniqueTask())).json()
    expect(body).toMatchObject({ code: "unauthorized", field: "token" })
  })

  it("allows what the scopes list and answers 403 out of scope, by agent and by task", async () => {
    const token = await hsToken({ subscribe: ["agent-1/*"], publish: ["agent-1/task-9"] })
    expect(await everywhere(token, AGENT, "task-9")).toEqual({ ingest: 201, history: 200, stream: 200 })
    expect(await everywhere(token, AGENT, uniqueTask())).toEqual({ ingest: 403, history: 200, stream: 200 })
    expect(await everywhere(token, "agent-2", uniqueTask())).toEqual({ ingest: 403, history: 403, stream: 403 })
    const forbidden = await (await request(gateway, "ingest", "agent-2", uniqueTask(), { token })).json()
    expect(forbidden.code).toBe("forbidden")
  })

  it("matches * within one segment only", async () => {
    const token = await hsToken({ subscribe: ["agent-1/job-*"], publish: ["*/job-*"] })
    expect(await everywhere(token, AGENT, "job-7")).toEqual({ ingest: 201, history: 200, stream: 200 })
    expect(await everywhere(token, AGENT, "task-7")).toEqual({ ingest: 403, history: 403, stream: 403 })
    expect(await everywhere(token, "agent-x", "job-8")).toEqual({ ingest: 201, history: 403, stream: 403 })
  })

  it("reads the token from the Authorization header, the access_token query parameter, or the cookie", async () => {
    const token = await hsToken({ subscribe: ["*/*"] })
    const task = uniqueTask()
    expect(await statusOf(request(gateway, "stream", AGENT, task, { token }))).toBe(200)
    expect(await statusOf(request(gateway, "stream", AGENT, task, { query: `?access_token=${token}` }))).toBe(200)
    expect(await statusOf(request(gateway, "stream", AGENT, task, { headers: { cookie: `taskstream_token=${token}` } }))).toBe(200)
    expect(await statusOf(request(gateway, "stream", AGENT, task, { headers: { cookie: `other=${token}` } }))).toBe(401)
  })

  it("refuses cookie credentials on cross-site writes and WebSocket upgrades, but not explicit tokens", async () => {
    const token = await hsToken({ subscribe: ["*/*"], publish: ["*/*"] })
    const task = uniqueTask()
    const own = new URL(gateway.url).origin
    const post = (headers: Record<string, string>) =>
      statusOf(fetch(`${gateway.url}${taskPath(AGENT, task)}/events`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(step(1))
      }))
    const cookie = { cookie: `taskstream_token=${token}` }
    expect(await post({ ...cookie, origin: "https://evil.example" })).toBe(403)
    expect(await post({ ...cookie, origin: own })).toBe(201)
    expect(await post(cookie)).toBe(201)
    expect(await post({ authorization: `Bearer ${token}`, origin: "https://evil.example" })).toBe(201)
    const upgrade = { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" }
    expect(await statusOf(fetch(`${gateway.url}/api/v1/ws`, { headers: { ...upgrade, ...cookie, origin: "https://evil.example" } }))).toBe(403)
    expect(await statusOf(request(gateway, "stream", AGENT, task, { headers: { ...cookie, origin: "https://evil.example" } }))).toBe(200)
  })

  it("lists only the tasks the bearer may subscribe to", async () => {
    const publisher = await hsToken({ publish: ["*/*"] })
    const mine = uniqueTask("mine")
    const theirs = uniqueTask("theirs")
    expect(await statusOf(request(gateway, "ingest", "agent-list-a", mine, { token: publisher }))).toBe(201)
    expect(await statusOf(request(gateway, "ingest", "agent-list-b", theirs, { token: publisher }))).toBe(201)
    const reader = await hsToken({ subscribe: ["agent-list-a/*"] })
    const listed = await (await fetch(`${gateway.url}/api/v1/tasks`, { headers: { authorization: `Bearer ${reader}` } })).json()
    const ids = listed.tasks.map((t: { taskId: string }) => t.taskId)
    expect(ids).toContain(mine)
    expect(ids).not.toContain(theirs)
    expect((await fetch(`${gateway.url}/api/v1/tasks`)).status).toBe(401)
  })

  it("ends an open stream with a token_expired frame when its token expires; a fresh token resumes it losslessly", async () => {
    const task = uniqueTask()
    const publisher = await hsToken({ publish: ["*/*"] })
    const post = (n: number) =>
      fetch(`${gateway.url}${taskPath(AGENT, task)}/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${publisher}` },
        body: JSON.stringify(step(n))
      })
    await post(1)
    const shortLived = await hsToken({ subscribe: ["*/*"] }, { exp: Math.floor(Date.now() / 1000) + 2 })
    const stream = await openSse(`${gateway.url}${taskPath(AGENT, task)}/events/stream`, { authorization: `Bearer ${shortLived}` })
    await stream.waitFor((frames) => eventFrames(frames).length === 1)
    await stream.ended
    // SPEC §8.3: the last frame says why the stream ended.
    expect(stream.frames.at(-1)).toEqual({ event: "token_expired", data: '{"reason":"token_expired"}' })
    await post(2)
    await post(3)
    const lastId = eventFrames(stream.frames).at(-1)!.id!
    const fresh = await hsToken({ subscribe: ["*/*"] })
    const resumed = await openSse(`${gateway.url}${taskPath(AGENT, task)}/events/stream`, {
      authorization: `Bearer ${fresh}`,
      "last-event-id": lastId
    })
    await resumed.waitFor((frames) => eventFrames(frames).length === 2)
    expect(eventFrames(resumed.frames).map((frame) => JSON.parse(frame.data).step)).toEqual([2, 3])
    resumed.close()
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text()
    expect(metrics).toMatch(/taskstream_disconnects_total\{[^}]*reason="token_expired"[^}]*\} [1-9]/)
    expect(metrics).toMatch(/taskstream_auth_failures_total\{reason="expired"\} [1-9]/)
  }, 20_000)
})

describe("JWT auth with a public key (RS256) and with a JWKS", () => {
  let keys: Awaited<ReturnType<typeof rsaKeys>>
  let jwks: Awaited<ReturnType<typeof serveJwks>>
  let byKey: Gateway
  let byJwks: Gateway
  beforeAll(async () => {
    keys = await rsaKeys()
    jwks = await serveJwks([keys.jwk])
    byKey = await startGateway({ AUTH_JWT_PUBLIC_KEY: keys.pem, AUTH_JWT_ALGORITHM: "RS256" })
    byJwks = await startGateway({ AUTH_JWKS_URL: jwks.url })
  })
  afterAll(async () => {
    await byKey.stop()
    await byJwks.stop()
    jwks.close()
  })

  it("accepts tokens signed by the key and refuses HS256 tokens", async () => {
    const token = await keys.token({ subscribe: ["*/*"], publish: ["*/*"] })
    const hs = await hsToken({ subscribe: ["*/*"], publish: ["*/*"] })
    for (const gateway of [byKey, byJwks]) {
      const task = uniqueTask()
      expect(await statusOf(request(gateway, "ingest", AGENT, task, { token }))).toBe(201)
      expect(await statusOf(request(gateway, "stream", AGENT, task, { token }))).toBe(200)
      expect(await statusOf(request(gateway, "stream", AGENT, task, { token: hs }))).toBe(401)
    }
  })
})

describe("Running open", () => {
  it("refuses to start open with NODE_ENV=production, naming the fix, unless AUTH=none", async () => {
    const refused = await startGateway({ NODE_ENV: "production" }).then(
      (gateway) => gateway.stop().then(() => "started"),
      (error: Error) => error.message
    )
    expect(refused).toContain("refusing to start without authentication in production")
    const open = await startGateway({ NODE_ENV: "production", AUTH: "none" })
    expect((await fetch(`${open.url}/healthz`)).status).toBe(200)
    await open.stop()
  })

  it("warns loudly when it starts without authentication", async () => {
    const open = await startGateway({})
    expect(open.output()).toContain("AUTHENTICATION IS OFF")
    await open.stop()
  })
})
