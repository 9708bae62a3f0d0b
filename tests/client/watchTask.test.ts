/**
 * `watchTask` in a real browser (headless Chromium's own EventSource)
 * against a real gateway: typed history then live, the end after a terminal
 * event, a 204 resume, a trimmed history (resync), a refused request — and
 * never a reconnect loop (EventSource constructions are counted).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import type { Page } from "playwright-core"
import { postEvents, step } from "../support/api.ts"
import { eventTypesFile } from "../support/eventTypes.ts"
import { type Browser, launchBrowser, screenshotOnFailure } from "../support/browser.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { sleep } from "../support/ports.ts"

const HISTORY_MAX = 20
const agent = "agent-w"

interface Watched {
  events: Array<{ id?: string; type: string; data: Record<string, unknown> }>
  ends: Array<string>
  resyncs: Array<{ reason: string; oldest: string }>
  errors: Array<{ status: number; code: string }>
}

/** Start watchTask in the page; its callbacks record into window.watched. */
const watch = (page: Page, options: { taskId: string; since?: string; types?: Array<string> }) =>
  page.evaluate((options) => {
    const w = window as any
    w.watched = { events: [], ends: [], resyncs: [], errors: [] }
    w.watch = w.taskstream.watchTask({
      agentId: "agent-w",
      ...options,
      onEvent: (event: any) => w.watched.events.push(event),
      onEnd: (end: string) => w.watched.ends.push(end),
      onResync: (resync: any) => w.watched.resyncs.push(resync),
      onError: (error: any) => w.watched.errors.push(error)
    })
  }, options)

const watched = (page: Page): Promise<Watched> => page.evaluate(() => (window as any).watched)
const sources = (page: Page): Promise<number> => page.evaluate(() => (window as any).eventSources)

describe("watchTask (EventSource client) in a real browser", () => {
  let gateway: Gateway
  let browser: Browser
  let page: Page
  beforeAll(async () => {
    const build = await Bun.build({ entrypoints: [`${import.meta.dir}/browserEntry.ts`], target: "browser" })
    if (!build.success) throw new AggregateError(build.logs)
    const script = await build.outputs[0].text()
    ;[gateway, browser] = await Promise.all([startGateway({ HISTORY_MAX: String(HISTORY_MAX), DEMO: "0", EVENT_TYPES_FILE: eventTypesFile() }), launchBrowser()])
    page = await browser.newPage()
    // Count EventSource constructions: a reconnect loop would show up here.
    await page.addInitScript(() => {
      const w = window as any
      const Native = w.EventSource
      w.eventSources = 0
      w.EventSource = class extends Native {
        constructor(...args: Array<any>) {
          super(...args)
          w.eventSources++
        }
      }
    })
    await page.goto(`${gateway.url}/healthz`)
    await page.addScriptTag({ content: script })
  })
  afterAll(async () => {
    await browser?.close()
    await gateway?.stop()
  })

  it("delivers typed history then live events, and ends after the terminal event without reconnecting", async () => {
    const taskId = uniqueTask("watch")
    await postEvents(gateway.url, agent, taskId, [{ type: "WorkflowStarted", data: { goal: "g" } }, step(1)])
    await screenshotOnFailure(page, "watchTask-live", async () => {
      await watch(page, { taskId })
      await page.waitForFunction(() => (window as any).watched.events.length === 2)
      await postEvents(gateway.url, agent, taskId, [
        { type: "WorkflowLLMCallStarted", data: { model: "gpt-4o" } },
        { type: "WorkflowCompleted", data: { total_cost: 0.1 } }
      ])
      await page.waitForFunction(() => (window as any).watched.ends.length === 1)
      await sleep(1000)
      const result = await watched(page)
      expect(result.events.map((event) => event.type)).toEqual(["WorkflowStarted", "WorkflowStepStarted", "WorkflowLLMCallStarted", "WorkflowCompleted"])
      expect(result.events[2].data.model).toBe("gpt-4o")
      expect(result.ends).toEqual(["completed"])
      expect(await sources(page)).toBe(1)
      expect(await page.evaluate(() => (window as any).watch.closed)).toBe(true)
    })
  }, 30_000)

  it("delivers the gateway's custom types, filtered by their category, and ends on a custom terminal type", async () => {
    const taskId = uniqueTask("watchCustom")
    await postEvents(gateway.url, agent, taskId, [step(1), { type: "ReviewRequested", data: { by: "ana" } }])
    await screenshotOnFailure(page, "watchTask-custom", async () => {
      await watch(page, { taskId, types: ["review"] })
      await page.waitForFunction(() => (window as any).watched.events.length === 1)
      await postEvents(gateway.url, agent, taskId, [{ type: "ReviewRejected", data: {} }])
      await page.waitForFunction(() => (window as any).watched.ends.length === 1)
      const result = await watched(page)
      expect(result.events.map((event) => [event.type, event.data])).toEqual([["ReviewRequested", { by: "ana" }], ["ReviewRejected", {}]])
      expect(result.ends).toEqual(["failed"])
      expect(await page.evaluate(() => (window as any).watch.closed)).toBe(true)
    })
  }, 30_000)

  it("ends on the gateway's 204 when resuming at the terminal event, without a reconnect loop", async () => {
    const taskId = uniqueTask("watch204")
    const posted = await postEvents(gateway.url, agent, taskId, [step(1), { type: "WorkflowCancelled", data: { reason: "r" } }])
    const before = await sources(page)
    await screenshotOnFailure(page, "watchTask-204", async () => {
      await watch(page, { taskId, since: posted.body.ids[1] })
      await page.waitForFunction(() => (window as any).watched.ends.length === 1)
      await sleep(2500)
      const result = await watched(page)
      expect(result.ends).toEqual(["ended"])
      expect(result.events).toEqual([])
      expect(result.errors).toEqual([])
      expect((await sources(page)) - before).toBe(1)
    })
  }, 30_000)

  it("reports a resync when resuming before the retained history, then delivers what is retained", async () => {
    const taskId = uniqueTask("watchResync")
    const posted = await postEvents(gateway.url, agent, taskId, Array.from({ length: HISTORY_MAX + 10 }, (_, i) => step(i + 1)))
    const ids: Array<string> = posted.body.ids
    await screenshotOnFailure(page, "watchTask-resync", async () => {
      await watch(page, { taskId, since: ids[0] })
      await page.waitForFunction(() => (window as any).watched.resyncs.length === 1 && (window as any).watched.events.length > 0)
      await sleep(300)
      const result = await watched(page)
      expect(result.resyncs[0].reason).toBe("history_trimmed")
      const oldest = result.resyncs[0].oldest
      expect(ids.indexOf(oldest)).toBeGreaterThan(1)
      expect(result.events.map((event) => event.id)).toEqual(ids.slice(ids.indexOf(oldest)))
      await page.evaluate(() => (window as any).watch.close())
    })
  }, 30_000)

  it("reports a refused request once instead of retrying it", async () => {
    const before = await sources(page)
    await screenshotOnFailure(page, "watchTask-refused", async () => {
      await watch(page, { taskId: uniqueTask("watchBad"), types: ["NotAType"] })
      await page.waitForFunction(() => (window as any).watched.errors.length === 1)
      await sleep(1500)
      const result = await watched(page)
      expect(result.errors).toHaveLength(1)
      expect(result.errors[0]).toMatchObject({ status: 400, code: "invalid_query" })
      expect((await sources(page)) - before).toBe(1)
    })
  }, 30_000)
})
