/**
 * `GET /` — the live dashboard (SPEC §4.2): a static page, its stylesheet,
 * and its script, bundled from `src/dashboard/main.ts` on first request by
 * the runtime's bundler and kept in memory. The page carries no data: it
 * talks to the API like any client (with the page's `access_token` or cookie).
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Hono } from "hono"
import type { RouteDeps } from "../deps.ts"

const dashboardFile = (name: string) => fileURLToPath(new URL(`../../dashboard/${name}`, import.meta.url))

const NO_BUNDLER = `document.getElementById("fatal").textContent = "This runtime cannot bundle the dashboard's script: run it with Bun, or with Deno and --unstable-bundle (deno task start)."`

export const dashboardRoutes = ({ config, bundle, logLine }: RouteDeps) => {
  const page = readFileSync(dashboardFile("index.html"), "utf8").replace("{{demo}}", config.demo ? "on" : "off")
  const styles = readFileSync(dashboardFile("dashboard.css"), "utf8")
  let script: Promise<string> | undefined
  const bundled = (run: NonNullable<typeof bundle>) =>
    (script ??= run(dashboardFile("main.ts")).catch((error: unknown) => {
      script = undefined
      throw error
    }))

  return new Hono()
    .get("/", (c) => c.html(page, 200, { "cache-control": "no-cache" }))
    .get("/dashboard.css", (c) => c.body(styles, 200, { "content-type": "text/css; charset=utf-8", "cache-control": "no-cache" }))
    .get("/dashboard.js", async (c) => {
      const headers = { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-cache" }
      if (bundle === undefined) return c.body(NO_BUNDLER, 200, headers)
      try {
        return c.body(await bundled(bundle), 200, headers)
      } catch (error) {
        logLine("error", "dashboard bundle failed", { error: String(error) })
        return c.body(`document.getElementById("fatal").textContent = "The dashboard's script failed to build; see the gateway's log."`, 500, headers)
      }
    })
}
