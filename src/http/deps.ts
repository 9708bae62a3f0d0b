/** What the route modules are built from: the services, resolved once at start-up. */
import type { UpgradeWebSocket, WSContext } from "hono/ws"
import type { Settings } from "../config.ts"
import type { EventLog } from "../log/EventLog.ts"
import type { TaskStream } from "../stream/TaskStream.ts"
import type { Connections } from "../transport/connections.ts"
import type { Authenticator } from "./auth.ts"
import type { WireSocket } from "../transport/websocket.ts"
import type { PublishRate } from "./publishRate.ts"

/** The runtime's WebSocket support, injected by the runtime entry (hono's Bun or Deno helper). */
export interface WebSocketRuntime {
  readonly upgradeWebSocket: UpgradeWebSocket
  /** The runtime socket behind one of hono's WSContext objects. */
  readonly wireSocket: (ws: WSContext) => WireSocket
}

export interface Lifecycle {
  /** Set at shutdown: readiness turns 503 and new streams are refused. */
  draining: boolean
}

export interface RouteDeps {
  readonly config: Settings
  readonly log: EventLog["Service"]
  readonly streams: TaskStream["Service"]
  readonly connections: Connections
  readonly auth: Authenticator
  readonly publishRate: PublishRate
  readonly lifecycle: Lifecycle
  readonly webSockets: WebSocketRuntime
}
