/**
 * Every WebSocket close code the gateway sends (SPEC §4.3, §6), with the
 * reason text that goes with it. Clients should reconnect (and resubscribe
 * with `since`) after any of them but `normal`.
 */
export const CloseCodes = {
  /** The client or the server ended the session cleanly. */
  normal: { code: 1000, reason: "normal closure" },
  /** A client frame was larger than MAX_EVENT_BYTES. */
  tooBig: { code: 1009, reason: "message too big" },
  /** An unexpected failure on the server. */
  internal: { code: 1011, reason: "internal error" },
  /** The instance is shutting down: reconnect, to another instance if need be. */
  shutdown: { code: 1012, reason: "service restart" },
  /** The client did not read fast enough and its outbound buffer passed CLIENT_BUFFER_BYTES. */
  slowConsumer: { code: 4008, reason: "slow consumer" }
} as const

export type CloseKind = keyof typeof CloseCodes
