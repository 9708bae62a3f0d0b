/**
 * The typed browser client (`taskstream/client`): `followTask` follows a task
 * over whichever transport gets through, with one connection shared by all
 * tabs (SPEC §12); `watchTask` follows one over SSE with `EventSource`;
 * `connectTaskSocket` holds one reconnecting WebSocket (many subscriptions,
 * pause/resume of delivery, workflow commands). Events are typed from the
 * gateway's event registry.
 */
export {
  Categories,
  type Category,
  CategoryOf,
  EndOf,
  type EphemeralType,
  type EventType,
  type FollowCallbacks,
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
export type { ConnectionState } from "./connection.ts"
export { BuiltinEventTypes, categoryOf, endingOf, type EventTypeTable, fetchEventTypes, type TypeInfo } from "./eventTypes.ts"
export { type Follow, type FollowOptions, type FollowState, followTask } from "./followTask.ts"
export type { Refusal, TransportName } from "./link.ts"
export type { Endpoint, TaskRef, TokenSource } from "./url.ts"
export { type Watch, type WatchError, type WatchOptions, watchTask } from "./watchTask.ts"
