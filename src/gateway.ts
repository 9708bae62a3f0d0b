/**
 * The whole gateway as one Effect program, independent of the runtime: the
 * config, the log layer it selects (Redis when REDIS_URL is set, memory
 * otherwise), the pipeline and the HTTP app. A runtime entry supplies only
 * `serve`, the one call that opens a listening socket.
 */
import process from "node:process"
import { Cause, Effect, Exit, Fiber, Layer, type Scope } from "effect"
import type { Hono } from "hono"
import { AppConfig, type Settings } from "./config.ts"
import { makeApp } from "./http/app.ts"
import { MemoryEventLogLayer } from "./log/MemoryEventLog.ts"
import { RedisEventLogLayer } from "./log/RedisEventLog.ts"
import { TaskStream } from "./stream/TaskStream.ts"

export const EventLogLayer = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* AppConfig
    return config.redisUrl === undefined ? MemoryEventLogLayer : RedisEventLogLayer
  })
)

export const GatewayLayer = TaskStream.layer.pipe(Layer.provideMerge(EventLogLayer), Layer.provideMerge(AppConfig.layer))

/** Opens the listening socket for `app`; returns the port it listens on. Released on shutdown. */
export type Serve = (app: Hono, config: Settings) => Effect.Effect<number, never, Scope.Scope>

const log = (level: "info" | "warn" | "error", message: string, fields: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ time: new Date().toISOString(), level, message, ...fields }))

export const gateway = (serve: Serve) =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    const { app } = yield* makeApp
    const port = yield* serve(app, config)
    const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host
    const url = `http://${host}:${port}`
    log("info", "listening", { url, log: config.redisUrl === undefined ? "memory" : "redis" })
    console.log(`taskstream is running: dashboard at ${url}/  ·  SSE at ${url}/api/v1/agents/{agentId}/tasks/{taskId}/events/stream`)
    return yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(GatewayLayer))

/** Run the gateway until SIGINT/SIGTERM, then release everything and exit. */
export const runGateway = (serve: Serve): void => {
  const fiber = Effect.runFork(gateway(serve))
  const stop = () => Effect.runFork(Fiber.interrupt(fiber))
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
  fiber.addObserver((exit) => {
    if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) {
      const failure = exit.cause.reasons.find(Cause.isFailReason)
      log("error", "start-up failed", { error: failure === undefined ? Cause.pretty(exit.cause) : String(failure.error) })
      process.exit(1)
    }
    log("info", "stopped")
    process.exit(0)
  })
}
