/**
 * The gateway's hono app in this process, on the embedded memory log, for
 * validation tests through `app.request()` (no socket). Its WebSocket support
 * refuses: these tests never upgrade.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import type { Hono } from "hono"
import { AppConfig, type Settings } from "../../src/config.ts"
import { makeApp } from "../../src/http/app.ts"
import type { WebSocketRuntime } from "../../src/http/deps.ts"
import { MemoryEventLogLayer } from "../../src/log/MemoryEventLog.ts"
import { TaskStates } from "../../src/stream/TaskStates.ts"
import { TaskStream } from "../../src/stream/TaskStream.ts"

const noWebSockets: WebSocketRuntime = {
  upgradeWebSocket: () => Promise.reject(new Error("no WebSocket upgrades in app.request() tests")),
  wireSocket: () => {
    throw new Error("no WebSocket upgrades in app.request() tests")
  }
}

export interface InProcessApp {
  readonly app: Hono
  close(): Promise<void>
}

export const inProcessApp = async (overrides: Partial<Settings> = {}): Promise<InProcessApp> => {
  const scope = Effect.runSync(Scope.make())
  const layer = Layer.mergeAll(TaskStream.layer, TaskStates.layer).pipe(Layer.provideMerge(MemoryEventLogLayer), Layer.provideMerge(AppConfig.layerWith({ redis: undefined, demo: false, ...overrides })))
  const { app } = await Effect.runPromise(makeApp(noWebSockets).pipe(Effect.provide(layer), Scope.provide(scope)))
  return { app, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}
