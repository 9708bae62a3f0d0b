/**
 * The whole gateway as one Effect program, independent of the runtime: the
 * config, the log layer it selects (Redis when REDIS_URL is set, memory
 * otherwise), the pipeline and the HTTP app. A runtime entry supplies only
 * `serve`, the one call that opens a listening socket, and its WebSocket
 * support.
 *
 * Shutdown (SIGTERM/SIGINT, SPEC §6): readiness turns 503, open streams are
 * closed so clients resume on another instance, then the server stops and the
 * log's connections are released — within DRAIN_MS.
 */
import process from "node:process"
import { Cause, Context, Effect, Exit, Fiber, Layer, type Scope } from "effect"
import type { Hono } from "hono"
import { AppConfig, type Settings } from "./config.ts"
import { Registry } from "./events/RegistryService.ts"
import { makeApp } from "./http/app.ts"
import { runBridge } from "./ingest/bridge.ts"
import type { Bundler, RouteDeps, WebSocketRuntime } from "./http/deps.ts"
import { MemoryLogLayer } from "./log/MemoryEventLog.ts"
import { EventLog } from "./log/EventLog.ts"
import { RedisLogLayer } from "./log/RedisEventLog.ts"
import { shareReads } from "./log/sharedReads.ts"
import { gatewayLogger, logAt, logEffect } from "./observability/log.ts"
import { GatewayMetrics } from "./observability/metrics.ts"
import { TaskStates } from "./stream/TaskStates.ts"
import { TaskStream } from "./stream/TaskStream.ts"

export const EventLogLayer = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* AppConfig
    if (config.redis === undefined) return MemoryLogLayer
    // Reads from Redis are shared between clients opening the same task together.
    return Layer.effectContext(
      Effect.gen(function*() {
        const services = yield* Layer.build(RedisLogLayer)
        return Context.add(services, EventLog, yield* shareReads(Context.get(services, EventLog), SHARED_READS))
      })
    )
  })
)

/** Pages kept 2 s, at most 16 MiB of them (by their events' data size). */
const SHARED_READS = { ttlMs: 2000, maxBytes: 16 * 1024 * 1024 }

/** The gateway's logging at its LOG_LEVEL. */
const LoggerLayer = Layer.unwrap(Effect.map(Effect.service(AppConfig), (config) => gatewayLogger(config.logLevel)))

/** This gateway's event registry: the built-ins and its EVENT_TYPES_FILE's types, complete before the log reads or writes. */
const RegistryLayer = Layer.unwrap(Effect.map(Effect.service(AppConfig), (config) => Registry.layerOf(config.eventTypes)))

/** The gateway's services on a given config (tests and embedders pass `AppConfig.layerWith(…)`). */
export const gatewayLayerWith = <E>(config: Layer.Layer<AppConfig, E>) =>
  Layer.mergeAll(TaskStream.layer, TaskStates.layer).pipe(
    Layer.provideMerge(EventLogLayer),
    // Each gateway counts in its own metrics registry, logs at its own level and knows its own types.
    Layer.provideMerge(Layer.mergeAll(LoggerLayer, GatewayMetrics.layer, RegistryLayer)),
    Layer.provideMerge(config)
  )

export const GatewayLayer = gatewayLayerWith(AppConfig.layer)

/** Opens the listening socket for `app`; returns the port it listens on. Released on shutdown. */
export type Serve = (app: Hono, config: Settings) => Effect.Effect<number, never, Scope.Scope>

/** What a runtime entry provides. */
export interface Runtime {
  readonly serve: Serve
  /** Built from the settings: a runtime may take its WebSocket options per upgrade (Deno) rather than per server (Bun). */
  readonly webSockets: (config: Settings) => WebSocketRuntime
  /** Bundles the dashboard's browser code; without it the dashboard page says it needs a runtime that can. */
  readonly bundle?: Bundler
  /**
   * A full collection that gives the free pages back to the OS, run once a surge of connections is
   * over (transport/memoryReducer.ts); without it (Deno: V8 reduces on its own) nothing is asked.
   */
  readonly reduceMemory?: () => void
}

/** Close every stream so clients reconnect elsewhere, waiting up to `budgetMs` for them to go. */
const drain = (deps: RouteDeps, budgetMs: number) =>
  Effect.gen(function*() {
    deps.lifecycle.draining = true
    const open = deps.connections.size
    yield* logEffect("info", "draining", { connections: open })
    deps.connections.closeAll("shutdown")
    const deadline = Date.now() + budgetMs
    while (deps.connections.size > 0 && Date.now() < deadline) yield* Effect.sleep("20 millis")
    yield* logEffect("info", "drained", { closed: open - deps.connections.size })
  })

export const gateway = ({ serve, webSockets, bundle, reduceMemory }: Runtime) =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    // Finalizers run in reverse: this one last, and the one added after `listening` first.
    yield* Effect.addFinalizer(() => logEffect("info", "stopped"))
    const { app, deps } = yield* makeApp(webSockets(config), bundle, reduceMemory)
    // Started after the log and released before it: the bridge's last appends still land.
    yield* runBridge
    const port = yield* serve(app, config)
    // Finalizers run in reverse: this drain runs before the server stops.
    yield* Effect.addFinalizer(() => drain(deps, Math.floor(config.drainMs / 2)))
    const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host
    const url = `http://${host}:${port}`
    yield* logEffect("info", "listening", { url, log: config.redis?.kind ?? "memory", auth: deps.auth.required, demo: config.demo })
    yield* Effect.addFinalizer(() => logEffect("info", "shutting down"))
    console.log(`taskstream is running: dashboard at ${url}/  ·  SSE at ${url}/api/v1/agents/{agentId}/tasks/{taskId}/events/stream`)
    return yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(GatewayLayer))

/** What fails before the gateway (and its logger) exists: start-up errors, always written. */
const startupLog = logAt("error")

/** Run the gateway until SIGINT/SIGTERM, then release everything and exit. */
export const runGateway = (runtime: Runtime): void => {
  const fiber = Effect.runFork(gateway(runtime))
  const stop = () => {
    Effect.runFork(Fiber.interrupt(fiber))
  }
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
  fiber.addObserver((exit) => {
    if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) {
      const failure = exit.cause.reasons.find(Cause.isFailReason)
      const error = failure === undefined ? Cause.pretty(exit.cause) : (failure.error as { message?: string }).message ?? String(failure.error)
      startupLog("error", "start-up failed", { error })
      process.exit(1)
    }
    process.exit(0)
  })
}
