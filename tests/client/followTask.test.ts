/**
 * `followTask` in a real headless Chromium against a real gateway (SPEC §12):
 * transport fallback through misbehaving proxies the test starts (WebSocket
 * upgrades refused → SSE; SSE buffered → WebSocket; back to the preferred
 * transport once it works), one WebSocket for 8 tabs following 3 tasks (the
 * gateway's connection gauge), a leader tab closed mid-stream, and a hidden
 * tab closing its connection, an offline period across a gateway restart —
 * each with a sequence that must arrive exactly once, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import type { Page } from "playwright-core"
import { postEvents, step } from "../support/api.ts"
import { type Browser, launchBrowser, screenshotOnFailure } from "../support/browser.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { eventually, freePort, sleep } from "../support/ports.ts"
import { startProxy } from "../support/proxy.ts"
import { startRedis } from "../support/redis.ts"

const agent = "agent-f"

interface Followed {
  events: Array<{ id?: string; type: string; data: Record<string, unknown> }>
  ends: Array<string>
  states: Array<string>
  transports: Array<string>
  errors: Array<{ status: number; code: string }>
  tabs: Array<number>
}

/** Start followTask in the page under `name`; its callbacks record into window.followed[name]. */
const follow = (page: Page, name: string, options: Record<string, unknown>) =>
  page.evaluate(([name, options]) => {
    const w = window as any
    w.followed ??= {}
    w.follows ??= {}
    const record: Record<string, Array<unknown>> = { events: [], ends: [], states: [], transports: [], errors: [], tabs: [] }
    w.followed[name] = record
    w.follows[name] = w.taskstream.followTask({
      agentId: "agent-f",
      ...options,
      onEvent: (event: any) => record.events.push(event),
      onEnd: (end: string) => record.ends.push(end),
      onState: (state: string) => record.states.push(state),
      onTransport: (transport: string) => record.transports.push(transport),
      onError: (error: any) => record.errors.push(error),
      onTabs: (tabs: number) => record.tabs.push(tabs)
    })
  }, [name, options] as const)

const followed = (page: Page, name: string): Promise<Followed> => page.evaluate((name) => (window as any).followed[name], name)

/** Publish steps 1..count, `gapMs` apart, then the terminal event. */
const publishSequence = async (baseUrl: string, taskId: string, count: number, gapMs: number) => {
  for (let i = 1; i <= count; i++) {
    const { status } = await postEvents(baseUrl, agent, taskId, [step(i)])
    expect(status).toBe(201)
    await sleep(gapMs)
  }
  expect((await postEvents(baseUrl, agent, taskId, [{ type: "WorkflowCompleted", data: {} }])).status).toBe(201)
}

/** Exactly steps 1..count then WorkflowCompleted, each once, in id order. */
const expectExactSequence = (record: Followed, count: number) => {
  expect(record.events.map((event) => (event.type === "WorkflowStepStarted" ? event.data.step : event.type))).toEqual([
    ...Array.from({ length: count }, (_, i) => i + 1),
    "WorkflowCompleted"
  ])
  expect(new Set(record.events.map((event) => event.id)).size).toBe(count + 1)
  expect(record.ends).toEqual(["completed"])
  expect(record.errors).toEqual([])
}

const ended = (page: Page, name: string, timeout = 30_000) =>
  page.waitForFunction((name) => (window as any).followed[name].ends.length > 0, name, { timeout })

/** The gateway's open streaming connections, by transport, from /metrics. */
const connectionGauge = async (baseUrl: string): Promise<{ ws: number; sse: number }> => {
  const text = await (await fetch(`${baseUrl}/metrics`)).text()
  const read = (transport: string) => Number(new RegExp(`^taskstream_connections\\{transport="${transport}"\\} (\\d+)`, "m").exec(text)?.[1] ?? 0)
  return { ws: read("ws"), sse: read("sse") }
}

describe("followTask in a real browser", () => {
  let gateway: Gateway
  let browser: Browser
  let script: string
  beforeAll(async () => {
    const build = await Bun.build({ entrypoints: [`${import.meta.dir}/browserEntry.ts`], target: "browser" })
    if (!build.success) throw new AggregateError(build.logs)
    script = await build.outputs[0].text()
    ;[gateway, browser] = await Promise.all([startGateway({ DEMO: "0" }), launchBrowser()])
  })
  afterAll(async () => {
    await browser?.close()
    await gateway?.stop()
  })

  /** A page of `origin` with the client loaded. */
  const openPage = async (origin: string): Promise<Page> => {
    const page = await browser.newPage()
    await page.goto(`${origin}/healthz`)
    await page.addScriptTag({ content: script })
    return page
  }

  it("reports a task of another agent as a refusal at open (404 not_found) over WebSocket and SSE, never as an end", async () => {
    const taskId = uniqueTask("other-agent")
    await postEvents(gateway.url, "agent-owner", taskId, [step(1)])
    const proxy = await startProxy(gateway.url, { refuseUpgrades: true })
    const pages = { websocket: await openPage(gateway.url), sse: await openPage(proxy.url) }
    try {
      for (const [transport, page] of Object.entries(pages)) {
        await screenshotOnFailure(page, `followTask-other-agent-${transport}`, async () => {
          await follow(page, "t", { taskId, shareAcrossTabs: false })
          await page.waitForFunction(() => (window as any).followed.t.errors.length > 0, undefined, { timeout: 20_000 })
          const record = await followed(page, "t")
          expect(record.errors).toEqual([
            expect.objectContaining({ status: transport === "sse" ? 404 : 0, code: "not_found" })
          ])
          expect(record.ends).toEqual([])
          expect(record.events).toEqual([])
        })
      }
    } finally {
      for (const page of Object.values(pages)) await page.close()
      await proxy.close()
    }
  }, 60_000)

  it("falls back to SSE when a proxy refuses the WebSocket upgrade, and delivers the sequence exactly once", async () => {
    const proxy = await startProxy(gateway.url, { refuseUpgrades: true })
    const page = await openPage(proxy.url)
    const taskId = uniqueTask("no-ws")
    try {
      await screenshotOnFailure(page, "followTask-no-ws", async () => {
        await postEvents(gateway.url, agent, taskId, [step(1), step(2)])
        const publishing = (async () => {
          await sleep(20)
          for (let i = 3; i <= 30; i++) {
            await postEvents(gateway.url, agent, taskId, [step(i)])
            await sleep(30)
          }
          await postEvents(gateway.url, agent, taskId, [{ type: "WorkflowCompleted", data: {} }])
        })()
        await follow(page, "t", { taskId, shareAcrossTabs: false })
        await publishing
        await ended(page, "t")
        const record = await followed(page, "t")
        expectExactSequence(record, 30)
        expect(record.transports).toEqual(["sse"])
        expect(record.states).toContain("fallback")
        expect(proxy.counts.refusedUpgrades).toBeGreaterThan(0)
      })
    } finally {
      await page.close()
      await proxy.close()
    }
  }, 60_000)

  it("falls back to WebSocket when a proxy buffers SSE (open but silent past the probe time)", async () => {
    const proxy = await startProxy(gateway.url, { bufferSse: true })
    const page = await openPage(proxy.url)
    const taskId = uniqueTask("buffered")
    try {
      await screenshotOnFailure(page, "followTask-buffered", async () => {
        await postEvents(gateway.url, agent, taskId, [step(1)])
        await follow(page, "t", { taskId, shareAcrossTabs: false, transports: ["sse", "websocket"], probeMs: 1000 })
        await publishSequence(gateway.url, taskId, 30, 60)
        await ended(page, "t")
        // Step 1 was published before the follow: publishSequence publishes 1..30 again as new events.
        const record = await followed(page, "t")
        const steps = record.events.filter((event) => event.type === "WorkflowStepStarted").map((event) => event.data.step)
        expect(steps).toEqual([1, ...Array.from({ length: 30 }, (_, i) => i + 1)])
        expect(new Set(record.events.map((event) => event.id)).size).toBe(record.events.length)
        expect(record.events.at(-1)!.type).toBe("WorkflowCompleted")
        expect(record.transports).toEqual(["websocket"])
        expect(record.states).toContain("fallback")
        expect(proxy.counts.heldStreams).toBeGreaterThan(0)
      })
    } finally {
      await page.close()
      await proxy.close()
    }
  }, 60_000)

  it("goes back to the preferred transport once it gets through again, without a gap or a duplicate", async () => {
    const proxy = await startProxy(gateway.url, { refuseUpgrades: true })
    const page = await openPage(proxy.url)
    const taskId = uniqueTask("back-to-ws")
    try {
      await screenshotOnFailure(page, "followTask-back-to-ws", async () => {
        await follow(page, "t", { taskId, shareAcrossTabs: false, retryPreferredMs: 400 })
        const publishing = publishSequence(gateway.url, taskId, 60, 40)
        await page.waitForFunction(() => (window as any).followed.t.transports.includes("sse"))
        proxy.mode.refuseUpgrades = false
        await page.waitForFunction(() => (window as any).followed.t.transports.includes("websocket"), undefined, { timeout: 20_000 })
        await publishing
        await ended(page, "t")
        const record = await followed(page, "t")
        expectExactSequence(record, 60)
        expect(record.transports).toEqual(["sse", "websocket"])
      })
    } finally {
      await page.close()
      await proxy.close()
    }
  }, 60_000)

  it("shares one WebSocket between 8 tabs following 3 tasks; closing the leader tab hands over without loss", async () => {
    const pages = await Promise.all(Array.from({ length: 8 }, () => openPage(gateway.url)))
    const tasks = [uniqueTask("tabs-a"), uniqueTask("tabs-b"), uniqueTask("tabs-c")]
    const names = tasks.map((_, i) => `task${i}`)
    try {
      await screenshotOnFailure(pages[0], "followTask-tabs", async () => {
        for (const taskId of tasks) await postEvents(gateway.url, agent, taskId, [step(1)])
        for (const page of pages) for (const [i, taskId] of tasks.entries()) await follow(page, names[i], { taskId })
        // Every tab counts 8 tabs on an open connection, and the gateway sees one connection for all of them.
        for (const page of pages) {
          await page.waitForFunction(
            (names) => names.every((name) => (window as any).follows[name].tabs === 8 && (window as any).follows[name].state === "open"),
            names,
            { timeout: 20_000 }
          )
        }
        expect(await connectionGauge(gateway.url)).toEqual({ ws: 1, sse: 0 })

        // Publish throughout; close the leader tab in the middle.
        const publishing = Promise.all(tasks.map((taskId, i) => (async () => {
          for (let n = 2; n <= 40; n++) {
            await postEvents(gateway.url, agent, taskId, [step(n)])
            await sleep(25 + i * 5)
          }
          await postEvents(gateway.url, agent, taskId, [{ type: "WorkflowCompleted", data: {} }])
        })()))
        await sleep(400)
        const leading = await Promise.all(pages.map((page) => page.evaluate(() => (window as any).follows.task0.leading as boolean)))
        expect(leading.filter(Boolean)).toHaveLength(1)
        const leader = pages[leading.indexOf(true)]
        await leader.close({ runBeforeUnload: false })
        const remaining = pages.filter((page) => page !== leader)
        await publishing
        for (const page of remaining) {
          for (const name of names) {
            await ended(page, name)
            expectExactSequence(await followed(page, name), 40)
          }
        }
        const newLeaders = await Promise.all(remaining.map((page) => page.evaluate(() => (window as any).follows.task0.leading as boolean)))
        expect(newLeaders.filter(Boolean)).toHaveLength(1)
        expect(await remaining[0].evaluate(() => (window as any).follows.task0.tabs)).toBe(7)
        // All three tasks ended: the new leader's connection closes once nothing is followed.
        await eventually(async () => (await connectionGauge(gateway.url)).ws === 0, 10_000, "the shared connection to close")
      })
    } finally {
      await Promise.all(pages.map((page) => page.close().catch(() => undefined)))
    }
  }, 120_000)

  it("closes a hidden tab's connection after closeWhenHidden and resumes with no gap when it is visible again", async () => {
    const page = await openPage(gateway.url)
    const taskId = uniqueTask("hidden")
    try {
      await screenshotOnFailure(page, "followTask-hidden", async () => {
        // Let the test decide what document.visibilityState says.
        await page.evaluate(() => {
          const w = window as any
          w.visibility = "visible"
          Object.defineProperty(document, "visibilityState", { configurable: true, get: () => w.visibility })
          Object.defineProperty(document, "hidden", { configurable: true, get: () => w.visibility === "hidden" })
        })
        const setVisibility = (visibility: string) =>
          page.evaluate((visibility) => {
            ;(window as any).visibility = visibility
            document.dispatchEvent(new Event("visibilitychange"))
          }, visibility)
        await follow(page, "t", { taskId, closeWhenHidden: 300 })
        const publishing = publishSequence(gateway.url, taskId, 50, 40)
        await page.waitForFunction(() => (window as any).followed.t.events.length >= 5)
        await setVisibility("hidden")
        await page.waitForFunction(() => (window as any).follows.t.state === "hidden")
        await eventually(async () => (await connectionGauge(gateway.url)).ws === 0, 10_000, "the hidden tab's connection to close")
        const whileHidden = (await followed(page, "t")).events.length
        await sleep(500)
        expect((await followed(page, "t")).events.length).toBe(whileHidden)
        await setVisibility("visible")
        await publishing
        await ended(page, "t")
        const record = await followed(page, "t")
        expectExactSequence(record, 50)
        expect(record.states).toEqual(expect.arrayContaining(["open", "hidden", "connecting", "closed"]))
      })
    } finally {
      await page.close()
    }
  }, 60_000)

  it("reports an offline period as a state, not an error, and resumes when the browser is online again", async () => {
    const redis = await startRedis()
    const port = String(await freePort())
    let restarted: Gateway = await startGateway({ REDIS_URL: redis.url, PORT: port, DEMO: "0" })
    const page = await openPage(restarted.url)
    const taskId = uniqueTask("offline")
    try {
      await screenshotOnFailure(page, "followTask-offline", async () => {
        for (let n = 1; n <= 5; n++) await postEvents(restarted.url, agent, taskId, [step(n)])
        await follow(page, "t", { taskId, shareAcrossTabs: false })
        await page.waitForFunction(() => (window as any).followed.t.events.length === 5)
        await browser.context.setOffline(true)
        await restarted.stop()
        await page.waitForFunction(() => (window as any).follows.t.state === "offline", undefined, { timeout: 15_000 })
        restarted = await startGateway({ REDIS_URL: redis.url, PORT: port, DEMO: "0" })
        for (let n = 6; n <= 10; n++) await postEvents(restarted.url, agent, taskId, [step(n)])
        await sleep(300)
        expect((await followed(page, "t")).events).toHaveLength(5)
        await browser.context.setOffline(false)
        await page.waitForFunction(() => (window as any).followed.t.events.length === 10, undefined, { timeout: 15_000 })
        await postEvents(restarted.url, agent, taskId, [{ type: "WorkflowCompleted", data: {} }])
        await ended(page, "t")
        const record = await followed(page, "t")
        expectExactSequence(record, 10)
        expect(record.states).toEqual(["connecting", "open", "offline", "connecting", "open", "closed"])
      })
    } finally {
      await browser.context.setOffline(false)
      await page.close()
      await restarted.stop()
      await redis.stop()
    }
  }, 60_000)
})
