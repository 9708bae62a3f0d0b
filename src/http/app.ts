/**
 * The hono application: every route, mounted once, behind the request id and
 * CORS middleware. Built as an Effect so the services it uses are resolved at
 * start-up and its timers are released with the program.
 */
import { Effect, FiberSet, Result, Schema } from "effect"
import { Hono } from "hono"
import { cors } from "hono/cors"
import { requestId } from "hono/request-id"
import { AppConfig } from "../config.ts"
import { DemoRuns } from "../demo/runs.ts"
import { Registry } from "../events/RegistryService.ts"
import { EventLog } from "../log/EventLog.ts"
import { GatewayLog, logEffect } from "../observability/log.ts"
import { GatewayMetrics } from "../observability/metrics.ts"
import { makeLogPublisher } from "../publisher/log.ts"
import { Connections } from "../transport/connections.ts"
import { TRANSPORTS } from "../transport/transports.ts"
import { makeAuthenticator } from "./auth.ts"
import type { Bundler, Lifecycle, RouteDeps, RouteRuntime, RouteServices, RuntimeBindings, WebSocketRuntime } from "./deps.ts"
import { apiError, errorResponse } from "./errors.ts"
import { RateLimit } from "./rateLimit.ts"
import { agUiRoutes } from "./routes/agui.ts"
import { cloudEventRoutes } from "./routes/cloudevents.ts"
import { controlRoutes } from "./routes/control.ts"
import { dashboardRoutes } from "./routes/dashboard.ts"
import { demoRoutes } from "./routes/demo.ts"
import { eventRoutes } from "./routes/events.ts"
import { eventTypeRoutes } from "./routes/eventTypes.ts"
import { healthRoutes } from "./routes/health.ts"
import { stateRoutes } from "./routes/state.ts"
import { streamRoutes } from "./routes/stream.ts"
import { taskRoutes } from "./routes/tasks.ts"
import { uiMessageStreamRoutes } from "./routes/uiMessageStream.ts"
import { wsRoutes } from "./routes/ws.ts"
import { TaskQuota } from "./taskQuota.ts"

export const API_PREFIX = "/api/v1"

/** Sent with every response: no URL (with its `access_token`) leaks as a referrer, no type is sniffed. */
export const SECURITY_HEADERS = {
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff"
} as const

/** Sent with pages (the dashboard): only its own script and styles, talking only to this origin, never framed. */
export const PAGE_SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-frame-options": "DENY"
} as const

export class StartupError extends Schema.TaggedError<StartupError>()("StartupError", {
  message: Schema.String
}) {}

export const makeApp = Effect.fnUntraced(function*(webSockets: WebSocketRuntime, bundle?: Bundler, reduceMemory?: () => void) {
  const config = yield* AppConfig
  const logLine = yield* GatewayLog
  const auth = makeAuthenticator(config, logLine)
  if (Result.isFailure(auth)) return yield* new StartupError({ message: auth.failure })
  if (!auth.success.required) {
    yield* logEffect("warn", "AUTHENTICATION IS OFF: anyone who can reach this gateway can read and publish every task. Set AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL.")
  }
  const metrics = yield* GatewayMetrics
  metrics.init(TRANSPORTS)
  const lifecycle: Lifecycle = { draining: false }
  // Every fiber a route starts lives in this set, which closes (interrupting them) with the app,
  // and runs with the gateway's services: routes ask for them with `yield*`.
  const fork = yield* FiberSet.makeRuntime<RouteServices>()
  const runtime: RouteRuntime = {
    fork: (effect) => fork(effect),
    exit: (effect) => new Promise((resolve) => fork(effect).addObserver(resolve))
  }
  const deps: RouteDeps = {
    runtime,
    config,
    metrics,
    registry: yield* Registry,
    log: yield* EventLog,
    logLine,
    auth: auth.success,
    publishRate: new RateLimit(config.publishRate),
    commandRate: new RateLimit(config.commandRate),
    taskQuota: new TaskQuota(config.tasksPerHour),
    lifecycle,
    connections: yield* Effect.acquireRelease(
      Effect.sync(() => new Connections(config.heartbeatMs, config, metrics, logLine, webSockets.publish, reduceMemory)),
      (connections) => Effect.sync(() => connections.stop())
    ),
    webSockets,
    bundle,
    demos: yield* Effect.acquireRelease(
      Effect.map(makeLogPublisher, (publisher) => new DemoRuns(publisher, config.demoSpeed, logLine)),
      (demos) => Effect.sync(() => demos.stopAll())
    )
  }
  const app = new Hono()
  app.use(requestId())
  app.use(async (c, next) => {
    await next()
    if (c.res.status === 101) return
    const type = c.res.headers.get("content-type") ?? ""
    const headers = type.startsWith("text/html") ? { ...SECURITY_HEADERS, ...PAGE_SECURITY_HEADERS } : SECURITY_HEADERS
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value)
    // A stream may stay quiet between heartbeats: exempt its connection from the HTTP idle timeout.
    if (type.startsWith("text/event-stream")) (c.env as RuntimeBindings | undefined)?.keepOpen?.()
  })
  if (config.corsOrigins !== "") {
    const origins = config.corsOrigins.split(",").map((origin) => origin.trim())
    app.use(
      `${API_PREFIX}/*`,
      cors({
        origin: origins.includes("*") ? "*" : origins,
        // ce-*: the CloudEvents binary mode's attributes (POST /cloudevents).
        allowHeaders: ["authorization", "content-type", "last-event-id", "idempotency-key", "ce-specversion", "ce-id", "ce-source", "ce-type", "ce-subject", "ce-time", "ce-agentid", "ce-taskid"],
        exposeHeaders: ["retry-after"],
        credentials: !origins.includes("*")
      })
    )
  }
  app
    .route("/", healthRoutes(deps))
    .route("/", dashboardRoutes(deps))
    .route(API_PREFIX, streamRoutes(deps))
    .route(API_PREFIX, eventRoutes(deps))
    .route(API_PREFIX, eventTypeRoutes(deps))
    .route(API_PREFIX, cloudEventRoutes(deps))
    .route(API_PREFIX, taskRoutes(deps))
    .route(API_PREFIX, stateRoutes(deps))
    .route(API_PREFIX, agUiRoutes(deps))
    .route(API_PREFIX, uiMessageStreamRoutes(deps))
    .route(API_PREFIX, controlRoutes(deps))
    .route(API_PREFIX, wsRoutes(deps))
    .route(API_PREFIX, demoRoutes(deps))
  app.notFound((c) => errorResponse(c, apiError("not_found", `no route for ${c.req.method} ${c.req.path}`)))
  app.onError((error, c) => {
    logLine("error", "unhandled", { error: String(error), path: c.req.path, requestId: c.get("requestId") })
    return errorResponse(c, apiError("internal", "internal error"))
  })
  return { app, deps }
})
