/** What the route modules are built from: the services, resolved once at start-up. */
import type { UpgradeWebSocket, WSContext } from "hono/ws"
import type { Settings } from "../config.ts"
import type { EventLog } from "../log/EventLog.ts"
import type { TaskStream } from "../stream/TaskStream.ts"
import type { Heartbeats } from "../transport/heartbeat.ts"
import type { WireSocket } from "../transport/websocket.ts"

/** The runtime's WebSocket support, injected by the runtime entry (hono's Bun or Deno helper). */
export interface WebSocketRuntime {
  readonly upgradeWebSocket: UpgradeWebSocket
  /** The runtime socket behind one of hono's WSContext objects. */
  readonly wireSocket: (ws: WSContext) => WireSocket
}

export interface RouteDeps {
  readonly config: Settings
  readonly log: EventLog["Service"]
  readonly streams: TaskStream["Service"]
  readonly heartbeats: Heartbeats
  readonly webSockets: WebSocketRuntime
  /** Every open WebSocket session, closed with 1012 at shutdown. */
  readonly sessions: Set<WsSessionHandle>
}

export interface WsSessionHandle {
  shutdown(): void
}
