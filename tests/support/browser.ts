/**
 * A real headless Chromium (Debian's /usr/bin/chromium) driven by
 * playwright-core, with a fresh profile per launch, and a screenshot under
 * .test-output/ when a browser test fails.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BrowserContext, chromium, type Page } from "playwright-core"

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
const outputDir = join(import.meta.dir, "..", "..", ".test-output")

export interface Browser {
  readonly context: BrowserContext
  newPage(): Promise<Page>
  close(): Promise<void>
}

export const launchBrowser = async (): Promise<Browser> => {
  const profile = mkdtempSync(join(tmpdir(), "taskstream-chromium-"))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1360, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync"
    ]
  })
  return {
    context,
    newPage: () => context.newPage(),
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    }
  }
}

/** Run `body`; when it throws, save a screenshot of `page` as .test-output/<name>.png first. */
export const screenshotOnFailure = async <A>(page: Page, name: string, body: () => Promise<A>): Promise<A> => {
  try {
    return await body()
  } catch (error) {
    mkdirSync(outputDir, { recursive: true })
    const path = join(outputDir, `${name}.png`)
    await page.screenshot({ path, fullPage: true }).catch(() => undefined)
    throw new Error(`${(error as Error).message}\n(screenshot: ${path})`, { cause: error })
  }
}
