/**
 * The hono application: every route, mounted once. Built as an Effect so the
 * services it uses are resolved at start-up and its timers are released with
 * the program.
 */
import { Effect } from "effect"
import { Hono } from "hono"
import { AppConfig } from "../config.ts"
import { EventLog } from "../log/EventLog.ts"
import { TaskStream } from "../stream/TaskStream.ts"
import { Heartbeats } from "../transport/heartbeat.ts"
import type { RouteDeps } from "./deps.ts"
import { apiError, errorResponse } from "./errors.ts"
import { eventRoutes } from "./routes/events.ts"
import { healthRoutes } from "./routes/health.ts"
import { streamRoutes } from "./routes/stream.ts"
import { taskRoutes } from "./routes/tasks.ts"

export const API_PREFIX = "/api/v1"

export const makeApp = Effect.gen(function*() {
  const config = yield* AppConfig
  const deps: RouteDeps = {
    config,
    log: yield* EventLog,
    streams: yield* TaskStream,
    heartbeats: yield* Effect.acquireRelease(
      Effect.sync(() => new Heartbeats(config.heartbeatMs)),
      (heartbeats) => Effect.sync(() => heartbeats.stop())
    )
  }
  const app = new Hono()
    .route("/", healthRoutes(deps))
    .route(API_PREFIX, streamRoutes(deps))
    .route(API_PREFIX, eventRoutes(deps))
    .route(API_PREFIX, taskRoutes(deps))
  app.notFound((c) => errorResponse(c, apiError("not_found", `no route for ${c.req.method} ${c.req.path}`)))
  app.onError((error, c) => {
    console.error(JSON.stringify({ level: "error", message: "unhandled", error: String(error) }))
    return errorResponse(c, apiError("internal", "internal error"))
  })
  return { app, deps }
})
