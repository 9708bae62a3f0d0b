/**
 * The dashboard end to end, in a real headless Chromium against a real
 * gateway (memory log, demo agent on, its delays shortened by DEMO_SPEED):
 * start a demo, watch it stream, pause and resume the workflow, pause the
 * live view, reload mid-stream, and see it complete.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test"
import type { Page } from "playwright-core"
import { type Browser, launchBrowser, screenshotOnFailure } from "../support/browser.ts"
import { type Gateway, startGateway } from "../support/gateway.ts"
import { sleep } from "../support/ports.ts"

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
      await page.waitForSelector("#connection[data-status='open']")
      await page.click("#start-demo")
      await page.waitForFunction(() => location.hash.startsWith("#/demo-agent/"))

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
      // The task list shows it as completed.
      await page.waitForSelector("#task-list a[data-status='completed']")
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
    })
    await page.close()
  }, 60_000)
})
