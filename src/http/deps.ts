/**
 * What the route modules are built from besides the gateway's services: the
 * runtime their effects run on (which provides those services — a route asks
 * for `EventLog`, `TaskStream`… with `yield*`), and the per-app parts that are
 * not services (auth, limits, connections, the runtime's WebSocket support).
 * One exception: the publishing routes append through `log.appendNow`, with no
 * effect run per request (docs/performance.md, "Issue 17, part 8").
 */
import type { Effect, Exit, Fiber } from "effect"
import type { Context } from "hono"
import type { WSContext, WSEvents } from "hono/ws"
import type { AppConfig, Settings } from "../config.ts"
import type { DemoRuns } from "../demo/runs.ts"
import type { EventRegistry } from "../events/registry.ts"
import type { Registry } from "../events/RegistryService.ts"
import type { ControlQueue } from "../log/ControlQueue.ts"
import type { EventLog } from "../log/EventLog.ts"
import type { LiveFeed } from "../log/LiveFeed.ts"
import type { TaskIndex } from "../log/TaskIndex.ts"
import type { LogLine } from "../observability/log.ts"
import type { GatewayMetrics, MetricsRecorder } from "../observability/metrics.ts"
import type { TaskStates } from "../stream/TaskStates.ts"
import type { TaskStream } from "../stream/TaskStream.ts"
import type { Connections } from "../transport/connections.ts"
import type { Authenticator } from "./auth.ts"
import type { SseBody } from "../transport/sseBody.ts"
import type { WireSocket } from "../transport/websocket.ts"
import type { Publish } from "../transport/wsTopics.ts"
import type { RateLimit } from "./rateLimit.ts"
import type { TaskQuota } from "./taskQuota.ts"

/** The runtime's WebSocket support, injected by the runtime entry (hono's Bun or Deno helper). */
export interface WebSocketRuntime {
  /** Answer an upgrade request with the runtime's 101 response, wiring the socket to `events`. */
  readonly upgradeWebSocket: (c: Context, events: WSEvents) => Promise<Response>
  /** The runtime socket behind one of hono's WSContext objects. */
  readonly wireSocket: (ws: WSContext) => WireSocket
  /** The runtime's pub/sub (Bun): one frame to every socket subscribed to a topic. */
  readonly publish?: Publish
}

/** Bundles a browser TypeScript entry (an absolute path) into one ES module; injected by a runtime that can. */
export type Bundler = (entry: string) => Promise<string>

export interface Lifecycle {
  /** Set at shutdown: readiness turns 503 and new streams are refused. */
  draining: boolean
}

/** The services a route's effect may ask for: the runtime provides them. */
export type RouteServices = AppConfig | GatewayMetrics | Registry | EventLog | LiveFeed | TaskIndex | ControlQueue | TaskStream | TaskStates

/**
 * Runs the effects routes start (streams, catch-ups, commands) as fibers of
 * the app's FiberSet, with the gateway's services: the gateway's shutdown
 * interrupts whatever is still running, and nothing runs detached from it.
 */
export interface RouteRuntime {
  readonly fork: <A, E>(effect: Effect.Effect<A, E, RouteServices>) => Fiber.Fiber<A, E>
  /** Run `effect` to its exit. */
  readonly exit: <A, E>(effect: Effect.Effect<A, E, RouteServices>) => Promise<Exit.Exit<A, E>>
}

export interface RouteDeps {
  readonly runtime: RouteRuntime
  /** AppConfig and GatewayMetrics, resolved once: guards and limits read them before any effect runs. */
  readonly config: Settings
  readonly metrics: MetricsRecorder
  /** The gateway's Registry, resolved once: parameters and bodies are checked against it before any effect runs. */
  readonly registry: EventRegistry
  /** The gateway's EventLog, resolved once: the publishing routes append without starting a fiber per request. */
  readonly log: EventLog["Service"]
  /** This gateway's log lines, for plain code (effects use Effect's logger). */
  readonly logLine: LogLine
  readonly connections: Connections
  readonly auth: Authenticator
  readonly publishRate: RateLimit
  readonly commandRate: RateLimit
  readonly taskQuota: TaskQuota
  readonly lifecycle: Lifecycle
  readonly webSockets: WebSocketRuntime
  /** Absent on a runtime without a bundler: the dashboard page then explains it cannot run. */
  readonly bundle: Bundler | undefined
  readonly demos: DemoRuns
}

/** What the runtime passes to `app.fetch` as its environment. */
export interface RuntimeBindings {
  /** The client's IP address, for per-subject limits when the gateway runs open. */
  readonly clientAddress?: string | undefined
  /** The runtime's server object, which its WebSocket upgrade helper needs (hono/bun reads `server`). */
  readonly server?: unknown
  /** Exempt this request's connection from the HTTP idle timeout: called for streaming responses. */
  readonly keepOpen?: () => void
  /** The runtime's SSE response body (Bun: direct streams); web-standard streams without it. */
  readonly sseBody?: SseBody
}
