/**
 * The dashboard end to end, in a real headless Chromium against a real
 * gateway (memory log, demo agent on, its delays shortened by DEMO_SPEED):
 * start a demo, watch it stream, pause and resume the workflow, pause the
 * live view, reload mid-stream, and see it complete; then its rough edges
 * (links to empty tasks or not to tasks, sparse events, in-flight text, the
 * shared connection indicator) and a pasted token that expires and is replaced.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import type { Page } from "playwright-core"
import { type Browser, launchBrowser, screenshotOnFailure } from "../support/browser.ts"
import { postEvents, step } from "../support/api.ts"
import { eventTypesFile } from "../support/eventTypes.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { uniqueTask } from "../support/harness.ts"
import { sleep } from "../support/ports.ts"
import { hsToken, SECRET } from "../support/tokens.ts"

const rows = (page: Page) =>
  page.$$eval("#timeline li", (items) => items.map((item) => ({ id: item.getAttribute("data-id")!, type: item.getAttribute("data-type")! })))

const idValue = (id: string) => id.split("-").map(Number) as [number, number]
const inIdOrder = (ids: ReadonlyArray<string>) =>
  ids.every((id, i) => {
    if (i === 0) return true
    const [ms, seq] = idValue(id)
    const [prevMs, prevSeq] = idValue(ids[i - 1])
    return ms > prevMs || (ms === prevMs && seq > prevSeq)
  })

const expectWellOrdered = async (page: Page) => {
  const ids = (await rows(page)).map((row) => row.id)
  expect(new Set(ids).size).toBe(ids.length)
  expect(inIdOrder(ids)).toBe(true)
  return ids
}

describe("dashboard in a real browser", () => {
  let gateway: Gateway
  let browser: Browser
  beforeAll(async () => {
    ;[gateway, browser] = await Promise.all([startGateway({ DEMO: "1", DEMO_SPEED: "2" }), launchBrowser()])
  })
  afterAll(async () => {
    await browser?.close()
    await gateway?.stop()
  })

  it("streams a demo task live, obeys Pause/Resume, survives a reload, and shows the completion", async () => {
    const page = await browser.newPage()
    const errors: Array<string> = []
    page.on("pageerror", (error) => errors.push(error.message))
    await screenshotOnFailure(page, "dashboard-demo", async () => {
      await page.goto(gateway.url)
      expect(await page.textContent("#connection")).toBe("no task open")
      await page.click("#start-demo")
      await page.waitForFunction(() => location.hash.startsWith("#/demo-agent/"))
      await page.waitForSelector("#connection[data-status='open']")
      expect(await page.textContent("#connection")).toMatch(/^live · WebSocket/)
      expect(await page.title()).toContain("demo-")

      // Events appear, in id order.
      await page.waitForSelector("#timeline li[data-type='WorkflowStepStarted']")
      await page.waitForFunction(() => document.querySelectorAll("#timeline li").length >= 3)
      await expectWellOrdered(page)
      expect(await page.textContent("#task-goal")).toContain("checkout latency")

      // Pause the workflow: WorkflowPaused appears, then nothing more until Resume.
      await page.click("button[data-command='pause']")
      await page.waitForSelector("#timeline li[data-type='WorkflowPaused']", { timeout: 10_000 })
      expect(await page.textContent("#task-status")).toBe("paused")
      expect(await page.isDisabled("button[data-command='pause']")).toBe(true)
      const atPause = await rows(page)
      await sleep(1500)
      const whilePaused = await rows(page)
      expect(whilePaused.length).toBe(atPause.length)
      expect(whilePaused.at(-1)!.type).toBe("WorkflowPaused")

      await page.click("button[data-command='resume']")
      await page.waitForSelector("#timeline li[data-type='WorkflowResumed']")
      await page.waitForFunction(
        (count) => document.querySelectorAll("#timeline li").length > count + 1,
        whilePaused.length
      )
      expect(await page.textContent("#task-status")).toBe("running")

      // Pause the live view (delivery only): nothing is shown meanwhile, everything arrives on resume.
      await page.check("#live-pause")
      await sleep(300)
      const beforeLivePause = (await rows(page)).length
      await sleep(1200)
      expect((await rows(page)).length).toBe(beforeLivePause)
      await page.uncheck("#live-pause")
      await page.waitForFunction((count) => document.querySelectorAll("#timeline li").length > count, beforeLivePause)
      await expectWellOrdered(page)

      // Reload mid-stream: the timeline is rebuilt with no duplicate and goes on live.
      const beforeReload = (await rows(page)).length
      expect(await page.$("#timeline li[data-type='WorkflowCompleted']")).toBeNull()
      await page.reload()
      await page.waitForFunction((count) => document.querySelectorAll("#timeline li").length >= count, beforeReload)
      await expectWellOrdered(page)

      // The end: WorkflowCompleted shown, the banner and status say so, the controls are off.
      await page.waitForSelector("#timeline li[data-type='WorkflowCompleted']", { timeout: 30_000 })
      const ids = await expectWellOrdered(page)
      expect((await rows(page)).at(-1)!.type).toBe("WorkflowCompleted")
      expect(ids.length).toBeGreaterThan(20)
      expect(await page.textContent("#end-banner")).toContain("Completed")
      expect(await page.textContent("#task-status")).toBe("completed")
      expect(await page.isDisabled("button[data-command='cancel']")).toBe(true)
      // The LLM answers were streamed into their rows.
      expect(await page.textContent("#timeline li[data-type='WorkflowLLMCallStarted'] .stream")).toContain("Plan:")
      // The task list shows it as completed, in another colour than a running task.
      await page.waitForSelector("#task-list a[data-status='completed']")
      expect(await page.$eval("#task-list a[data-status='completed'] .dot", (dot) => getComputedStyle(dot).backgroundColor)).toBe("rgb(79, 70, 229)")
      expect(await page.textContent("#connection")).toBe("stream ended")
      expect(errors).toEqual([])
    })
    await page.close()
  }, 90_000)

  it("cancels a running demo task from the Cancel button", async () => {
    const page = await browser.newPage()
    await screenshotOnFailure(page, "dashboard-cancel", async () => {
      await page.goto(gateway.url)
      await page.click("#start-demo")
      await page.waitForSelector("#timeline li[data-type='WorkflowStepStarted']")
      await page.click("button[data-command='cancel']")
      await page.waitForSelector("#timeline li[data-type='WorkflowCancelled']")
      expect(await page.textContent("#end-banner")).toContain("Cancelled")
      expect(await page.textContent("#task-status")).toBe("cancelled")
      await sleep(500)
      expect((await rows(page)).at(-1)!.type).toBe("WorkflowCancelled")
      // The command's note does not outlive the answer.
      expect(await page.textContent("#command-note")).toBe("")
      // Cancelled and completed tasks are not shown as running in the list.
      await page.waitForSelector("#task-list a[data-status='cancelled']")
      const colours = await page.$$eval("#task-list a", (links) =>
        Object.fromEntries(links.map((link) => [link.getAttribute("data-status"), getComputedStyle(link.querySelector(".dot")!).backgroundColor]))
      )
      expect(colours.cancelled).toBe("rgb(220, 38, 38)")
      if (colours.running !== undefined) expect(colours.running).not.toBe(colours.cancelled)
    })
    await page.close()
  }, 60_000)
})

describe("dashboard rough edges, in a real browser", () => {
  let gateway: Gateway
  let browser: Browser
  beforeAll(async () => {
    ;[gateway, browser] = await Promise.all([startGateway({ DEMO: "0", EVENT_TYPES_FILE: eventTypesFile() }), launchBrowser()])
  })
  afterAll(async () => {
    await browser?.close()
    await gateway?.stop()
  })

  it("says what a link to a task with no events yet waits for, then shows its events", async () => {
    const page = await browser.newPage()
    const taskId = uniqueTask("empty")
    await screenshotOnFailure(page, "dashboard-empty-task", async () => {
      await page.goto(`${gateway.url}/#/agent-d/${taskId}`)
      expect(await page.title()).toBe(`${taskId} · taskstream`)
      await page.waitForSelector("#connection[data-status='open']")
      expect(await page.textContent("#waiting")).toBe(`No events yet: waiting for agent-d to publish the first event of ${taskId}…`)
      await postEvents(gateway.url, "agent-d", taskId, [step(1)])
      await page.waitForSelector("#timeline li[data-type='WorkflowStepStarted']")
      expect(await page.isHidden("#waiting")).toBe(true)
    })
    await page.close()
  }, 30_000)

  it("says that an unknown link format is not a task link", async () => {
    const page = await browser.newPage()
    await screenshotOnFailure(page, "dashboard-bad-link", async () => {
      await page.goto(`${gateway.url}/#task-42`)
      expect(await page.textContent("#link-note")).toContain("does not name a task: task links look like #/<agentId>/<taskId>")
      expect(await page.isHidden("#task-view")).toBe(true)
      expect(await page.title()).toBe("taskstream")
    })
    await page.close()
  }, 30_000)

  it("leaves out fields an event does not have, instead of showing undefined", async () => {
    const page = await browser.newPage()
    const taskId = uniqueTask("sparse")
    await postEvents(gateway.url, "agent-d", taskId, [
      { type: "WorkflowStarted", data: {} },
      { type: "WorkflowStepCompleted", data: { step: "collect" } },
      { type: "WorkflowLLMCallStarted", data: { model: "m", estimated_cost: null } },
      { type: "WorkflowLLMCallCompleted", data: { model: "m", content: "the stored answer" } },
      { type: "WorkflowToolCallCompleted", data: { tool_name: "search", tool_call_id: "c1", success: true } },
      { type: "WorkflowFailed", data: { error: "boom", error_type: null } }
    ])
    await screenshotOnFailure(page, "dashboard-sparse", async () => {
      await page.goto(`${gateway.url}/#/agent-d/${taskId}`)
      await page.waitForSelector("#timeline li[data-type='WorkflowFailed']")
      const text = await page.textContent("#timeline")
      expect(text).not.toContain("undefined")
      expect(text).not.toContain("null ")
      expect(await page.textContent("#timeline li[data-type='WorkflowStepCompleted'] .detail")).toBe("#collect")
      // A completed call that streamed no chunk shows its stored content, with no cursor.
      const box = "#timeline li[data-type='WorkflowLLMCallStarted'] .stream"
      expect(await page.textContent(box)).toBe("the stored answer")
      expect(await page.$eval(box, (element) => element.classList.contains("open"))).toBe(false)
      expect(await page.textContent("#end-banner")).toBe("Failed: boom")
    })
    await page.close()
  }, 30_000)

  it("shows the gateway's custom types under their category, and ends on a custom terminal type", async () => {
    const page = await browser.newPage()
    const taskId = uniqueTask("custom")
    await postEvents(gateway.url, "agent-d", taskId, [
      { type: "WorkflowStarted", data: { goal: "review" } },
      { type: "ReviewRequested", data: { by: "ana" } },
      { type: "ReviewRejected", data: { error: "not approved" } }
    ])
    await screenshotOnFailure(page, "dashboard-custom", async () => {
      await page.goto(`${gateway.url}/#/agent-d/${taskId}`)
      await page.waitForSelector("#timeline li[data-type='ReviewRejected']")
      expect(await page.getAttribute("#timeline li[data-type='ReviewRequested']", "class")).toContain("cat-review")
      await page.waitForFunction(() => !(document.querySelector("#end-banner") as HTMLElement).hidden)
      expect(await page.textContent("#end-banner")).toBe("Failed: not approved")
      expect(await page.textContent("#task-status")).toBe("failed")
    })
    await page.close()
  }, 30_000)

  it("replaces an LLM call's text with a compacted chunk and appends live chunks, per call", async () => {
    const page = await browser.newPage()
    const build = await Bun.build({ entrypoints: [`${import.meta.dir}/timelineEntry.ts`], target: "browser" })
    if (!build.success) throw new AggregateError(build.logs)
    await page.goto(`${gateway.url}/healthz`)
    await page.addScriptTag({ content: await build.outputs[0].text() })
    const texts = await page.evaluate(() => {
      const { Timeline } = (window as any).dashboard
      const list = document.createElement("ol")
      document.body.append(list)
      const timeline = new Timeline({ list, onState() {}, onCost() {}, onCount() {}, onGoal() {}, onEnd() {} })
      const event = (id: string | undefined, type: string, data: object) => ({ id, type, agentId: "a", taskId: "t", time: new Date().toISOString(), data })
      const chunk = (data: object) => timeline.add(event(undefined, "WorkflowLLMCallChunk", data), true)
      timeline.add(event("1-0", "WorkflowLLMCallStarted", { model: "m", call_id: "a" }), false)
      timeline.add(event("2-0", "WorkflowLLMCallStarted", { model: "m", call_id: "b" }), false)
      chunk({ call_id: "a", chunk: "Hel", chunk_index: 0 })
      chunk({ call_id: "b", chunk: "Bon", chunk_index: 0 })
      // A reconnect: the text so far, compacted, then the live chunks after it.
      chunk({ call_id: "a", chunk: "Hello", chunk_index: 1, compacted: true })
      chunk({ call_id: "a", chunk: " world", chunk_index: 2 })
      chunk({ call_id: "b", chunk: "jour", chunk_index: 1 })
      const boxes = () => [...list.querySelectorAll(".stream")].map((box) => [box.textContent, box.classList.contains("open")])
      const streaming = boxes()
      timeline.add(event("3-0", "WorkflowLLMCallCompleted", { model: "m", call_id: "b" }), true)
      return { streaming, after: boxes() }
    })
    expect(texts.streaming).toEqual([["Hello world", true], ["Bonjour", true]])
    expect(texts.after).toEqual([["Hello world", true], ["Bonjour", false]])
    await page.close()
  }, 30_000)

  it("shows the transport and the number of tabs sharing the connection", async () => {
    const taskId = uniqueTask("shared")
    await postEvents(gateway.url, "agent-d", taskId, [step(1)])
    const pages = [await browser.newPage(), await browser.newPage()]
    await screenshotOnFailure(pages[0], "dashboard-shared", async () => {
      for (const page of pages) await page.goto(`${gateway.url}/#/agent-d/${taskId}`)
      for (const page of pages) {
        await page.waitForFunction(() => document.querySelector("#connection")!.textContent === "live · WebSocket · shared by 2 tabs")
      }
      await pages[1].close()
      await pages[0].waitForFunction(() => document.querySelector("#connection")!.textContent === "live · WebSocket")
    })
    await pages[0].close()
  }, 30_000)
})

describe("dashboard with auth, in a real browser", () => {
  let gateway: Gateway
  let browser: Browser
  beforeAll(async () => {
    ;[gateway, browser] = await Promise.all([startGateway({ DEMO: "0", AUTH_JWT_SECRET: SECRET }), launchBrowser()])
  })
  afterAll(async () => {
    await browser?.close()
    await gateway?.stop()
  })

  it("takes a pasted token, and goes on from the last event once a fresh one replaces an expired one", async () => {
    const page = await browser.newPage()
    const taskId = uniqueTask("token")
    const publisher = `Bearer ${await hsToken({ publish: ["agent-d/*"] })}`
    const publish = async (n: number) => {
      const response = await fetch(`${gateway.url}/api/v1/agents/agent-d/tasks/${taskId}/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: publisher },
        body: JSON.stringify(step(n))
      })
      expect(response.status).toBe(201)
    }
    const paste = async (token: string) => {
      await page.click("#token-button")
      await page.fill("#token-input", token)
      await page.click("#token-form button[type='submit']")
    }
    await screenshotOnFailure(page, "dashboard-token", async () => {
      await publish(1)
      await page.goto(`${gateway.url}/#/agent-d/${taskId}`)
      expect(await page.textContent("#token-note")).toBe("no token")
      // A token that expires within 1–2 s.
      await paste(await hsToken({ subscribe: ["agent-d/*"] }, { exp: Math.floor(Date.now() / 1000) + 2 }))
      expect(await page.textContent("#token-note")).toMatch(/^token until /)
      await page.waitForSelector("#timeline li[data-type='WorkflowStepStarted']", { timeout: 15_000 })
      await publish(2)
      await page.waitForFunction(() => document.querySelectorAll("#timeline li").length === 2)
      await page.waitForFunction(() => document.querySelector("#token-note")!.textContent!.startsWith("token expired"), undefined, { timeout: 15_000 })
      await publish(3)
      await publish(4)
      await sleep(300)
      await paste(await hsToken({ subscribe: ["agent-d/*"] }))
      await page.waitForFunction(() => document.querySelectorAll("#timeline li").length === 4, undefined, { timeout: 20_000 })
      await publish(5)
      await page.waitForFunction(() => document.querySelectorAll("#timeline li").length === 5)
      const ids = await expectWellOrdered(page)
      expect(ids).toHaveLength(5)
      expect(await page.textContent("#fatal")).toBe("")
      // A refused token is told apart from a transport that does not get through: still on the WebSocket.
      expect(await page.textContent("#connection")).toBe("live · WebSocket")
    })
    await page.close()
  }, 60_000)
})
