/**
 * The typed browser client (`taskstream/client`): follow a task over SSE with
 * `watchTask`, or over one reconnecting WebSocket with `connectTaskSocket`
 * (many subscriptions, pause/resume of delivery, workflow commands).
 * Events are typed from the gateway's event registry.
 */
export {
  Categories,
  type Category,
  CategoryOf,
  EndOf,
  type EphemeralType,
  type EventType,
  EventTypes,
  isTerminalType,
  type PayloadOf,
  type Resync,
  type TaskEnd,
  type TaskEvent,
  type TerminalType,
  type TypeSelector
} from "./events.ts"
export {
  type CommandKind,
  connectTaskSocket,
  type SocketError,
  type SocketStatus,
  type SubscribeOptions,
  type Subscription,
  type TaskSocket,
  type TaskSocketOptions
} from "./socket.ts"
export type { Endpoint, TaskRef } from "./url.ts"
export { type Watch, type WatchError, type WatchOptions, watchTask } from "./watchTask.ts"
