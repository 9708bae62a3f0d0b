/**
 * Routing: every route of the app fits hono's RegExpRouter (one regular expression per method),
 * which the app's SmartRouter then uses. A pattern it refuses (a `:param{a|b}` beside static
 * segments at the same place, say) makes every request fall back to the TrieRouter, which cost
 * ≈ 8 µs of CPU per ingest request (docs/performance.md, issue 17 part 5) — and matched that
 * pattern loosely (`…/pausefoo` paused the task).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import { RegExpRouter } from "hono/router/reg-exp-router"
import { startApp, type TestApp } from "../support/app.ts"

describe("Routing", () => {
  let t: TestApp
  beforeAll(async () => {
    t = await startApp()
  })
  afterAll(() => t.close())

  it("builds every route into one RegExpRouter", () => {
    const router = new RegExpRouter<unknown>()
    for (const route of t.app.routes) router.add(route.method, route.path, route.handler)
    expect(() => router.match("POST", "/api/v1/agents/a/tasks/t/events")).not.toThrow()
    const [handlers] = router.match("POST", "/api/v1/agents/a/tasks/t/pause") as [Array<unknown>, unknown]
    expect(handlers.length).toBeGreaterThan(0)
  })

  it("routes with the RegExpRouter once serving", async () => {
    await t.request("/healthz")
    expect(t.app.router.name).toBe("SmartRouter + RegExpRouter")
  })

  it("answers a command that does not exist with 404, and each that does", async () => {
    // The TrieRouter matched `:command{pause|resume|cancel}` as `^pause|resume|cancel$`: these queued a command.
    for (const path of ["explode", "pausefoo", "xxresumexx", "precancel", "pause/extra"]) {
      const unknown = await t.request(`/api/v1/agents/a/tasks/t/${path}`, { method: "POST" })
      expect({ path, status: unknown.status }).toEqual({ path, status: 404 })
      expect(((await unknown.json()) as { code: string }).code).toBe("not_found")
    }
    for (const command of ["pause", "resume", "cancel"]) {
      const response = await t.request(`/api/v1/agents/a/tasks/t/${command}`, { method: "POST" })
      expect(response.status).toBe(202)
    }
  })
})
