/**
 * Every WebSocket close code the gateway sends (SPEC §4.3, §6), by the reason
 * the server closes a connection. Clients should reconnect (and resubscribe
 * with `since`) after any of them.
 */
import type { CloseReason } from "./connections.ts"

const normal = { code: 1000, reason: "normal closure" } as const

export const CloseCodes: Readonly<Record<CloseReason, { readonly code: number; readonly reason: string }>> = {
  completed: normal,
  failed: normal,
  cancelled: normal,
  client_gone: normal,
  /** A client frame was larger than MAX_EVENT_BYTES. */
  message_too_big: { code: 1009, reason: "message too big" },
  /** The instance is shutting down: reconnect, to another instance if need be. */
  shutdown: { code: 1012, reason: "service restart" },
  /** The bearer's token expired: reconnect with a fresh one. */
  token_expired: { code: 4001, reason: "token expired" },
  /** No valid `auth` frame within AUTH_FRAME_TIMEOUT_MS of opening, or a refused one. */
  unauthorized: { code: 4001, reason: "authentication required" },
  /** A connection limit refused the subject named by the `auth` frame: try again later. */
  limit: { code: 1013, reason: "try again later" },
  /** The runtime failed writing to the socket: reconnect (the gateway itself goes on). */
  write_failed: { code: 1011, reason: "internal error" },
  /** The client did not read fast enough and its outbound buffer passed CLIENT_BUFFER_BYTES. */
  slow_consumer: { code: 4008, reason: "slow consumer" }
}
