/**
 * `GET /healthz` (the process answers), `GET /readyz` (the log answers and the
 * instance is not draining) and `GET /metrics` (Prometheus text) — SPEC §4.2.
 */
import { Effect } from "effect"
import { Hono } from "hono"
import { Metrics, record, renderMetrics } from "../../observability/metrics.ts"
import type { RouteDeps } from "../deps.ts"
import { RETRY_AFTER_SECONDS } from "../errors.ts"

export const healthRoutes = ({ log, lifecycle }: RouteDeps) =>
  new Hono()
    .get("/healthz", (c) => c.json({ status: "ok" }))
    .get("/readyz", async (c) => {
      const ready = !lifecycle.draining &&
        (await Effect.runPromise(Effect.match(log.ping, { onSuccess: () => true, onFailure: () => false })))
      if (ready) return c.json({ status: "ready" })
      c.header("retry-after", String(RETRY_AFTER_SECONDS))
      const reason = lifecycle.draining ? "shutting down" : "the event log does not answer"
      return c.json({ status: "unavailable", reason }, 503)
    })
    .get("/metrics", async (c) => {
      record(Metrics.liveChannels, log.liveTaskCount())
      return c.text(await renderMetrics(), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" })
    })
