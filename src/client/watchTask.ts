/**
 * `watchTask`: follow one task over Server-Sent Events (SPEC §4.1) with the
 * browser's `EventSource`, typed. EventSource already reconnects with
 * `Last-Event-ID` after a dropped connection; this adds what it cannot do:
 * stop after a terminal event, recognise the server's `204` (the task ended
 * at or before our position) without a reconnect loop, tell a refused request
 * (4xx, reported once) from an outage (retried with backoff), and drop an
 * event it already delivered. EventSource delivers only the event names it
 * listens for: the gateway's types, custom ones included, are read once from
 * `GET /event-types` (the built-ins until it answers).
 */
import { type FollowCallbacks, isAfter, type Resync, type TaskEnd, type TaskEvent } from "./events.ts"
import { BuiltinEventTypes, endingOf, type EventTypeTable, fetchEventTypes } from "./eventTypes.ts"
import { backoff, currentToken, type Endpoint, streamUrl, type TaskRef } from "./url.ts"

export interface WatchError {
  /** The HTTP status, or 0 when the gateway could not be reached. */
  readonly status: number
  readonly code: string
  readonly message: string
}

export interface WatchOptions extends TaskRef, FollowCallbacks, Endpoint {
  /** The gateway refused the request (4xx): not retried. Outages are retried and not reported here. */
  readonly onError?: (error: WatchError) => void
  /** The stream is (re)connected. */
  readonly onOpen?: () => void
  /** The EventSource implementation (for runtimes without a global one). */
  readonly EventSource?: typeof EventSource
  /** Longest wait between attempts while the gateway is unreachable (default 10 s). */
  readonly maxRetryMs?: number
}

export interface Watch {
  /** The id of the last durable event delivered. */
  readonly lastEventId: string | undefined
  /** True once ended, refused or closed. */
  readonly closed: boolean
  close(): void
}

export const watchTask = (options: WatchOptions): Watch => {
  const Source = options.EventSource ?? globalThis.EventSource
  const maxRetryMs = options.maxRetryMs ?? 10_000
  let lastEventId = options.since
  let closed = false
  let source: EventSource | undefined
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let failures = 0
  /** The gateway's event types, once it told them. */
  let gatewayTypes: EventTypeTable | undefined

  /** The token of the current stream: a token function is asked again after the gateway ends a stream for expiry (SPEC §8.3). */
  let token: string | undefined

  const url = () => streamUrl(options.baseUrl, token, { ...options, since: lastEventId })

  const close = () => {
    closed = true
    source?.close()
    clearTimeout(retryTimer)
  }

  const end = (how: TaskEnd, event?: TaskEvent) => {
    close()
    options.onEnd?.(how, event)
  }

  const onEvent = (message: MessageEvent<string>, types: EventTypeTable) => {
    if (closed) return
    const event = JSON.parse(message.data) as TaskEvent
    if (event.id !== undefined) {
      if (!isAfter(event.id, lastEventId)) return
      lastEventId = event.id
    }
    failures = 0
    options.onEvent(event)
    const ending = endingOf(types, event.type)
    if (ending !== undefined) end(ending, event)
  }

  /**
   * EventSource gave up (a 204, another status, or a wrong content type) and
   * does not say which: ask once with a plain request, then end, report or retry.
   */
  const diagnose = async () => {
    const abort = new AbortController()
    let status = 0
    let body: { code?: string; message?: string } = {}
    try {
      const response = await fetch(url(), { headers: { accept: "text/event-stream" }, signal: abort.signal })
      status = response.status
      if (status >= 400 && status < 500) body = await response.json().catch(() => ({}))
    } catch {
      // unreachable: retried below
    } finally {
      abort.abort()
    }
    if (closed) return
    if (status === 204) return end("ended")
    // An expired token: a token function may give a fresh one.
    if (status === 401 && typeof options.token === "function") return reopenLater()
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      close()
      options.onError?.({ status, code: body.code ?? "http_error", message: body.message ?? `the gateway answered ${status}` })
      return
    }
    reopenLater()
  }

  function reopenLater() {
    failures++
    retryTimer = setTimeout(() => void open(), backoff(failures, 1000, maxRetryMs))
  }

  async function open() {
    if (closed) return
    token = await currentToken(options.token).catch(() => undefined)
    // Not reachable yet: the built-ins this time, asked again at the next connection.
    gatewayTypes ??= await fetchEventTypes({ baseUrl: options.baseUrl, token }).catch(() => undefined)
    if (closed) return
    const types = gatewayTypes ?? BuiltinEventTypes
    const current = new Source(url().toString())
    source = current
    const listener = (message: Event) => onEvent(message as MessageEvent<string>, types)
    for (const type of types.types.keys()) current.addEventListener(type, listener)
    current.addEventListener("resync", (message) => options.onResync?.(JSON.parse((message as MessageEvent<string>).data) as Resync))
    current.addEventListener("open", () => options.onOpen?.())
    // The gateway ends the stream because the token expired: reconnect at once with a fresh one and the last id.
    current.addEventListener("token_expired", () => {
      current.close()
      if (!closed) void open()
    })
    current.addEventListener("error", () => {
      if (!closed && current.readyState === Source.CLOSED) void diagnose()
    })
  }

  void open()
  return {
    get lastEventId() {
      return lastEventId
    },
    get closed() {
      return closed
    },
    close
  }
}
