/**
 * The gateway's hono app in-process, on the embedded memory log, for tests of
 * HTTP validation and routing through `app.request()`: the real routes, auth,
 * limits and log — no process, no socket. A WebSocket upgrade needs a runtime
 * (use a spawned gateway, `tests/support/gateway.ts`, for those).
 */
import { Effect, Exit, Scope } from "effect"
import type { Hono } from "hono"
import { AppConfig, type Settings } from "../../src/config.ts"
import { gatewayLayerWith } from "../../src/gateway.ts"
import { makeApp } from "../../src/http/app.ts"
import type { RouteDeps, WebSocketRuntime } from "../../src/http/deps.ts"
import { setLogLevel } from "../../src/observability/log.ts"

const noWebSockets: WebSocketRuntime = {
  upgradeWebSocket: () => Promise.reject(new Error("app.request() has no WebSocket upgrade; start a gateway")),
  wireSocket: () => {
    throw new Error("app.request() has no WebSocket upgrade; start a gateway")
  }
}

export interface TestApp {
  readonly app: Hono
  readonly deps: RouteDeps
  /** `app.request` with the API prefix's origin; `path` is absolute (`/api/v1/…`). */
  request(path: string, init?: RequestInit): Promise<Response>
  close(): Promise<void>
}

/** Build the app on the memory log with the default settings overridden by `overrides`. */
export const startApp = async (overrides: Partial<Settings> = {}): Promise<TestApp> => {
  setLogLevel("error")
  const scope = Effect.runSync(Scope.make())
  const layer = gatewayLayerWith(AppConfig.layerWith({ redis: undefined, demo: false, ...overrides }))
  const { app, deps } = await Effect.runPromise(
    makeApp(noWebSockets).pipe(Effect.provide(layer), Scope.provide(scope)) as Effect.Effect<{ app: Hono; deps: RouteDeps }>
  )
  return {
    app,
    deps,
    request: (path, init) => Promise.resolve(app.request(`http://gateway.test${path}`, init, { clientAddress: "127.0.0.1" })),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
