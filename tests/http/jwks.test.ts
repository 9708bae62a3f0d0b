/**
 * The JWKS fetch (on the app in-process): cut off after AUTH_JWKS_TIMEOUT_MS,
 * one fetch however many requests wait, a back-off after a failure, and no
 * fetch per request for a token naming an unknown key id.
 */
import { afterAll, beforeAll, describe, expect, it, spyOn } from "bun:test"
import { createServer, type Server } from "node:http"
import { taskPath } from "../support/api.ts"
import { startApp, type TestApp } from "../support/app.ts"
import { uniqueTask } from "../support/harness.ts"
import { rsaKeys } from "../support/tokens.ts"

type Mode = "hang" | "fail" | "serve"

/** A JWKS endpoint on loopback whose behaviour the test sets, counting the fetches it gets. */
const jwksServer = async (keys: ReadonlyArray<unknown>) => {
  let mode: Mode = "serve"
  let fetches = 0
  const server: Server = createServer((_request, response) => {
    fetches++
    if (mode === "hang") return
    if (mode === "fail") return void response.writeHead(500).end()
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json`,
    set: (next: Mode) => void (mode = next),
    fetches: () => fetches,
    close: () => server.closeAllConnections() ?? server.close()
  }
}

describe("JWKS fetch", () => {
  let keys: Awaited<ReturnType<typeof rsaKeys>>
  let jwks: Awaited<ReturnType<typeof jwksServer>>
  let gateway: TestApp
  const logged: Array<string> = []
  let errors: ReturnType<typeof spyOn>
  beforeAll(async () => {
    keys = await rsaKeys("key-1")
    jwks = await jwksServer([keys.jwk])
    errors = spyOn(console, "error").mockImplementation((line: unknown) => void logged.push(String(line)))
    gateway = await startApp({ authJwksUrl: jwks.url, authJwksTimeoutMs: 300 })
  })
  afterAll(async () => {
    await gateway.close()
    errors.mockRestore()
    jwks.close()
  })

  const read = async (token: string) => {
    const response = await gateway.request(`${taskPath("agent-1", uniqueTask())}/events`, { headers: { authorization: `Bearer ${token}` } })
    return { status: response.status, code: ((await response.json()) as { code?: string }).code }
  }

  it("answers 503 within the timeout when the JWKS hangs, with one fetch for all waiting requests, then backs off", async () => {
    jwks.set("hang")
    const token = await keys.token({ subscribe: ["*/*"] })
    const started = performance.now()
    const answers = await Promise.all(Array.from({ length: 10 }, () => read(token)))
    expect(performance.now() - started).toBeLessThan(3000)
    expect(answers.every((answer) => answer.status === 503 && answer.code === "auth_unavailable")).toBe(true)
    expect(jwks.fetches()).toBe(1)
    expect(logged.some((line) => line.includes("JWKS fetch failed") && line.includes("no answer within 300 ms"))).toBe(true)
    // Within the back-off, requests fail at once without fetching.
    expect(await read(token)).toEqual({ status: 503, code: "auth_unavailable" })
    expect(jwks.fetches()).toBe(1)
  })

  it("fetches again after the back-off, then serves tokens, and never fetches per request for an unknown key id", async () => {
    jwks.set("serve")
    const token = await keys.token({ subscribe: ["*/*"] })
    let answer = await read(token)
    for (let i = 0; answer.status !== 200 && i < 60; i++) {
      await Bun.sleep(100)
      answer = await read(token)
    }
    expect(answer.status).toBe(200)
    const before = jwks.fetches()
    const stranger = await (await rsaKeys("key-rotated")).token({ subscribe: ["*/*"] })
    for (let i = 0; i < 20; i++) expect((await read(stranger)).status).toBe(401)
    expect(jwks.fetches() - before).toBeLessThanOrEqual(1)
    expect((await read(token)).status).toBe(200)
  })
})
