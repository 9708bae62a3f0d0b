/** Gateway URLs and tokens, shared by every client in `taskstream/client`. */
import type { TypeSelector } from "./events.ts"

export interface TaskRef {
  readonly agentId: string
  readonly taskId: string
}

/**
 * A JWT, or a function that returns a fresh one (or a promise of one): it is
 * called for every new connection, so a stream whose token expired
 * (SPEC §8.3) reconnects with a new token and the last id. An empty string
 * means no token (the cookie, if any, still applies).
 */
export type TokenSource = string | (() => string | Promise<string>)

export interface Endpoint {
  /** The gateway's base URL; defaults to the page's origin. */
  readonly baseUrl?: string
  /** Sent as the `access_token` query parameter (browsers cannot set headers on EventSource or WebSocket). */
  readonly token?: TokenSource
}

/** The token to connect with now: the string, or what the function returns ("" = none). */
export const currentToken = async (source: TokenSource | undefined): Promise<string | undefined> =>
  (typeof source === "function" ? await source() : source) || undefined

const pageOrigin = (): string => {
  const location = (globalThis as { location?: { origin?: string } }).location
  if (location?.origin === undefined || location.origin === "null") {
    throw new Error("taskstream client: baseUrl is required outside a browser page")
  }
  return location.origin
}

export const apiUrl = (
  baseUrl: string | undefined,
  token: string | undefined,
  path: string,
  query: Record<string, string | undefined> = {}
): URL => {
  const url = new URL(`/api/v1${path}`, baseUrl ?? pageOrigin())
  for (const [name, value] of Object.entries({ ...query, access_token: token })) {
    if (value !== undefined) url.searchParams.set(name, value)
  }
  return url
}

export const taskPath = (task: TaskRef): string =>
  `/agents/${encodeURIComponent(task.agentId)}/tasks/${encodeURIComponent(task.taskId)}`

export const typesQuery = (types: TypeSelector | undefined): string | undefined =>
  types === undefined || types.length === 0 ? undefined : types.join(",")

/** A task's SSE stream (SPEC §4.1) as envelopes: after `since`, or with or without history. */
export const streamUrl = (
  baseUrl: string | undefined,
  token: string | undefined,
  stream: TaskRef & { readonly types?: TypeSelector; readonly since?: string; readonly history?: boolean }
): URL =>
  apiUrl(baseUrl, token, `${taskPath(stream)}/events/stream`, {
    format: "envelope",
    types: typesQuery(stream.types),
    last_event_id: stream.since,
    include_history: stream.since === undefined && stream.history === false ? "false" : undefined
  })

/** Delay before reconnect attempt `attempt` (1, 2, …): exponential from `baseMs`, capped, ±20 % jitter. */
export const backoff = (attempt: number, baseMs: number, maxMs: number): number =>
  Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 10)) * (0.8 + Math.random() * 0.4)
