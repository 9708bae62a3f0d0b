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
      const failure = lifecycle.draining
        ? "shutting down"
        : await Effect.runPromise(Effect.match(log.ping, { onSuccess: () => undefined, onFailure: (error) => `the event log is not ready: ${error.message}` }))
      if (failure === undefined) return c.json({ status: "ready" })
      c.header("retry-after", String(RETRY_AFTER_SECONDS))
      return c.json({ status: "unavailable", reason: failure }, 503)
    })
    .get("/metrics", async (c) => {
      record(Metrics.liveChannels, log.liveTaskCount())
      return c.text(await renderMetrics(), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" })
    })
