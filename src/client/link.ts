/**
 * A link: one connection of one transport to the gateway, carrying any number
 * of task subscriptions (`key` → task). The WebSocket link multiplexes them on
 * one socket; the SSE link opens one stream per subscription. A link never
 * reconnects by itself: it reports how it ended and `Connection` decides
 * (fall back, refresh the token, retry) — one place for that policy.
 */
import type { Resync, TaskEnd, TaskEvent, TypeSelector } from "./events.ts"

export type TransportName = "websocket" | "sse"
export const TRANSPORTS: ReadonlyArray<TransportName> = ["websocket", "sse"]

export interface LinkSubscription {
  readonly key: string
  readonly agentId: string
  readonly taskId: string
  readonly types?: TypeSelector
  /** Start after this id; without it, `history` says whether to replay the log first. */
  readonly since?: string
  readonly history?: boolean
}

/** The gateway refused a subscription (not an outage): reported, not retried. */
export interface Refusal {
  /** The HTTP status (SSE), or 0 for a WebSocket `error` frame. */
  readonly status: number
  readonly code: string
  readonly message: string
}

/**
 * How a link ended:
 * - `failed`: it never got through (upgrade refused, 426, network error, 5xx before any byte);
 * - `dropped`: it was open and went away (network, gateway restart, slow-consumer cut-off);
 * - `token_expired`: the gateway ended it because the token expired (SSE `token_expired`, WS 4001);
 * - `unauthorized`: the gateway refused the token (401).
 */
export type LinkEnd = "failed" | "dropped" | "token_expired" | "unauthorized"

export interface LinkEvents {
  /** The first bytes arrived: the transport gets through (not buffered by a proxy). */
  established(): void
  event(key: string, event: TaskEvent): void
  end(key: string, end: TaskEnd): void
  resync(key: string, resync: Resync): void
  refused(key: string, refusal: Refusal): void
  closed(end: LinkEnd): void
}

export interface LinkOptions {
  readonly baseUrl: string | undefined
  readonly token: string | undefined
  readonly events: LinkEvents
  readonly WebSocket?: typeof WebSocket
  readonly fetch?: typeof fetch
}

export interface Link {
  readonly transport: TransportName
  add(subscription: LinkSubscription): void
  remove(key: string): void
  /** Close without reporting `closed`. */
  close(): void
}
