/** What the route modules are built from: the services, resolved once at start-up. */
import type { Settings } from "../config.ts"
import type { EventLog } from "../log/EventLog.ts"
import type { TaskStream } from "../stream/TaskStream.ts"
import type { Heartbeats } from "../transport/heartbeat.ts"

export interface RouteDeps {
  readonly config: Settings
  readonly log: EventLog["Service"]
  readonly streams: TaskStream["Service"]
  readonly heartbeats: Heartbeats
}
