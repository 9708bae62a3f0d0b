/**
 * The gateway's hono app in-process, on the embedded memory log, for tests of
 * HTTP validation and routing through `app.request()`: the real routes, auth,
 * limits and log — no process, no socket. A WebSocket upgrade needs a runtime
 * (use a spawned gateway, `tests/support/gateway.ts`, for those).
 */
import { Context, Effect, Exit, Layer, Scope } from "effect"
import type { Hono } from "hono"
import { AppConfig, type Settings } from "../../src/config.ts"
import { gatewayLayerWith } from "../../src/gateway.ts"
import { makeApp } from "../../src/http/app.ts"
import type { RouteDeps, WebSocketRuntime } from "../../src/http/deps.ts"
import { ControlQueue } from "../../src/log/ControlQueue.ts"
import { EventLog } from "../../src/log/EventLog.ts"
import type { WorkflowPublisher } from "../../src/publisher/index.ts"
import { makeLogPublisher } from "../../src/publisher/log.ts"
import { type SseStream, sseStream } from "./sse.ts"

const noWebSockets: WebSocketRuntime = {
  upgradeWebSocket: () => Promise.reject(new Error("app.request() has no WebSocket upgrade; start a gateway")),
  wireSocket: () => {
    throw new Error("app.request() has no WebSocket upgrade; start a gateway")
  }
}

export interface TestApp {
  readonly app: Hono
  readonly deps: RouteDeps
  /** The app's own log and command queue, to publish as a workflow would. */
  readonly log: EventLog["Service"]
  readonly control: ControlQueue["Service"]
  /** A workflow's publisher on the app's own log and registry (the in-process SDK). */
  readonly publisher: WorkflowPublisher
  /**
   * `app.request` as the runtime would call it, from `clientAddress`; `path` is absolute
   * (`/api/v1/…`, on this app's origin) or a whole URL (to choose the Host the request names).
   */
  request(path: string, init?: RequestInit, clientAddress?: string): Promise<Response>
  /** An SSE stream of the app, parsed into frames; `close()` cancels it as a leaving client would. */
  openSse(path: string, headers?: Record<string, string>): Promise<SseStream>
  close(): Promise<void>
}

/** Build the app on the memory log with the default settings overridden by `overrides`. */
export const startApp = async (overrides: Partial<Settings> = {}): Promise<TestApp> => {
  const scope = Effect.runSync(Scope.make())
  const layer = gatewayLayerWith(AppConfig.layerWith({ redis: undefined, logLevel: "error", ...overrides }))
  // Built into our scope, so the log's connections and timers live until close().
  const { app, deps, log, control, publisher } = await Effect.runPromise(
    Effect.gen(function*() {
      const services = yield* Layer.buildWithScope(layer, scope)
      const built = yield* makeApp(noWebSockets).pipe(Effect.provide(services), Scope.provide(scope))
      const publisher = yield* makeLogPublisher.pipe(Effect.provide(services), Scope.provide(scope))
      return { ...built, log: Context.get(services, EventLog), control: Context.get(services, ControlQueue), publisher }
    }) as Effect.Effect<{ app: Hono; deps: RouteDeps; log: EventLog["Service"]; control: ControlQueue["Service"]; publisher: WorkflowPublisher }>
  )
  const request = (path: string, init?: RequestInit, clientAddress = "127.0.0.1") =>
    Promise.resolve(app.request(/^https?:\/\//.test(path) ? path : `http://gateway.test${path}`, init, { clientAddress }))
  return {
    app,
    deps,
    log,
    control,
    publisher,
    request,
    openSse: async (path, headers = {}) => {
      const response = await request(path, { headers: { accept: "text/event-stream", ...headers } })
      // The parser iterates the body; cancelling our own reader underneath ends it like a closed connection.
      const reader = response.body?.getReader()
      const body = reader === undefined ? null : new ReadableStream<Uint8Array>({
        pull: async (controller) => {
          const chunk = await reader.read()
          if (chunk.done) controller.close()
          else controller.enqueue(chunk.value)
        },
        cancel: () => reader.cancel()
      })
      return sseStream({ status: response.status, headers: response.headers, body }, () => void reader?.cancel().catch(() => {}))
    },
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

export type InProcessApp = TestApp
