/**
 * `GET /healthz` (the process answers), `GET /readyz` (the log answers and the
 * instance is not draining) and `GET /metrics` (Prometheus text) — SPEC §4.2.
 */
import { Effect, Exit, Redacted } from "effect"
import { Hono } from "hono"
import { GatewayMetrics, Metrics } from "../../observability/metrics.ts"
import { TRANSPORTS } from "../../transport/transports.ts"
import { EventLog } from "../../log/EventLog.ts"
import { LiveFeed } from "../../log/LiveFeed.ts"
import type { RouteDeps } from "../deps.ts"
import { apiError, errorResponse, RETRY_AFTER_SECONDS } from "../errors.ts"

const encoder = new TextEncoder()

/** Compares in time independent of where the texts differ, so the token cannot be guessed byte by byte. */
const sameText = (a: string, b: string): boolean => {
  const left = encoder.encode(a)
  const right = encoder.encode(b)
  let difference = left.length ^ right.length
  for (let i = 0; i < left.length; i++) difference |= left[i] ^ (right[i % right.length] ?? 0)
  return difference === 0
}

/** The log answers a ping and the live feed is subscribed. */
const ready = Effect.gen(function*() {
  yield* (yield* EventLog).ping
  yield* (yield* LiveFeed).ready
})

/** Hot paths count in plain numbers; the metrics take them now. */
const takeCounts = (connections: RouteDeps["connections"]) =>
  Effect.gen(function*() {
    const metrics = yield* GatewayMetrics
    metrics.record(Metrics.liveChannels, (yield* LiveFeed).liveTaskCount())
    const delivered = connections.writes.takeDelivered()
    for (const transport of TRANSPORTS) metrics.record(Metrics.eventsDelivered, delivered[transport], { transport })
    return yield* metrics.render
  })

export const healthRoutes = ({ config, connections, lifecycle, runtime }: RouteDeps) =>
  new Hono()
    .get("/healthz", (c) => c.json({ status: "ok" }))
    .get("/readyz", async (c) => {
      const failure = lifecycle.draining
        ? "shutting down"
        : await runtime.exit(Effect.match(ready, {
          onSuccess: () => undefined,
          onFailure: (error) => `the event log is not ready: ${error.message}`
        })).then((exit) => (Exit.isSuccess(exit) ? exit.value : "the readiness check did not finish"))
      if (failure === undefined) return c.json({ status: "ready" })
      c.header("retry-after", String(RETRY_AFTER_SECONDS))
      return c.json({ status: "unavailable", reason: failure }, 503)
    })
    .get("/metrics", async (c) => {
      // METRICS_TOKEN: the scraper sends it as a bearer token; the rest of the world gets 401.
      if (config.metricsToken !== undefined && !sameText(c.req.header("authorization") ?? "", `Bearer ${Redacted.value(config.metricsToken)}`)) {
        return errorResponse(c, apiError("unauthorized", "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>", "authorization"))
      }
      const text = await runtime.exit(takeCounts(connections))
      if (Exit.isFailure(text)) return errorResponse(c, apiError("internal", "internal error"))
      return c.text(text.value, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" })
    })
