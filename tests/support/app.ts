/**
 * The gateway's hono app in this process, on the embedded memory log, for
 * tests that go through `app.request()` (validation, auth, headers): no
 * socket, no child process. WebSocket upgrades need a runtime and are refused.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import type { Hono } from "hono"
import { AppConfig, type Settings } from "../../src/config.ts"
import { makeApp } from "../../src/http/app.ts"
import type { RouteDeps } from "../../src/http/deps.ts"
import { MemoryEventLogLayer } from "../../src/log/MemoryEventLog.ts"
import { TaskStream } from "../../src/stream/TaskStream.ts"

export interface InProcessApp {
  readonly app: Hono
  readonly deps: RouteDeps
  /** `app.request` with the client address the runtime would pass. */
  request(path: string, init?: RequestInit, clientAddress?: string): Promise<Response>
  close(): Promise<void>
}

export const startApp = async (overrides: Partial<Settings> = {}): Promise<InProcessApp> => {
  const scope = await Effect.runPromise(Scope.make())
  const layer = TaskStream.layer.pipe(Layer.provideMerge(MemoryEventLogLayer), Layer.provideMerge(AppConfig.layerWith(overrides)))
  const webSockets = {
    upgradeWebSocket: () => Promise.reject(new Error("no WebSocket runtime in app.request tests")),
    wireSocket: () => {
      throw new Error("no WebSocket runtime in app.request tests")
    }
  }
  const { app, deps } = await Effect.runPromise(
    makeApp(webSockets).pipe(Effect.provide(layer), Scope.provide(scope))
  )
  return {
    app,
    deps,
    request: async (path, init, clientAddress = "192.0.2.1") => app.request(path, init, { clientAddress }),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
