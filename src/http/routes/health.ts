/** `GET /healthz` (the process answers) and `GET /readyz` (the log answers) — SPEC §4.2. */
import { Effect } from "effect"
import { Hono } from "hono"
import type { RouteDeps } from "../deps.ts"
import { RETRY_AFTER_SECONDS } from "../errors.ts"

export const healthRoutes = ({ log }: RouteDeps) =>
  new Hono()
    .get("/healthz", (c) => c.json({ status: "ok" }))
    .get("/readyz", async (c) => {
      const ready = await Effect.runPromise(Effect.match(log.ping, { onSuccess: () => true, onFailure: () => false }))
      if (ready) return c.json({ status: "ready" })
      c.header("retry-after", String(RETRY_AFTER_SECONDS))
      return c.json({ status: "unavailable", reason: "the event log does not answer" }, 503)
    })
