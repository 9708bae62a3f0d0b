/**
 * The SSE link (SPEC §4.1): one `fetch` stream per subscription, read as
 * `text/event-stream`. `fetch` rather than `EventSource` because the client
 * must see what EventSource hides: the first bytes (the gateway flushes a
 * `retry:` line at once, so their absence means a buffering proxy), the HTTP
 * status (204 = ended, 401, 4xx refusals), and the end of the stream (after
 * `token_expired`, or an end without a terminal event).
 */
import type { Resync, TaskEvent } from "./events.ts"
import type { Link, LinkEnd, LinkOptions, LinkSubscription } from "./link.ts"
import { streamUrl } from "./url.ts"

/** Frames of the stream that are not events (any other named frame is one, custom types included). */
const notEvents = new Set(["message", "heartbeat"])

/** Splits a text/event-stream into its frames (`event` name and joined `data`). */
export class SseParser {
  private buffer = ""
  private event = ""
  private data: Array<string> = []

  push(text: string, emit: (event: string, data: string) => void): void {
    this.buffer += text
    let newline: number
    while ((newline = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, "")
      this.buffer = this.buffer.slice(newline + 1)
      if (line === "") {
        if (this.data.length > 0) emit(this.event || "message", this.data.join("\n"))
        this.event = ""
        this.data = []
        continue
      }
      const colon = line.indexOf(":")
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "")
      if (field === "event") this.event = value
      else if (field === "data") this.data.push(value)
    }
  }
}

export const openSseLink = ({ baseUrl, token, events, fetch: fetchImpl = globalThis.fetch }: LinkOptions): Link => {
  const streams = new Map<string, AbortController>()
  let established = false
  let done = false

  const finish = (end: LinkEnd) => {
    if (done) return
    done = true
    for (const abort of streams.values()) abort.abort()
    streams.clear()
    events.closed(end)
  }

  const read = async (subscription: LinkSubscription, abort: AbortController) => {
    const key = subscription.key
    const response = await fetchImpl(streamUrl(baseUrl, token, subscription), { headers: { accept: "text/event-stream" }, cache: "no-store", signal: abort.signal })
    if (response.status === 204) {
      streams.delete(key)
      return events.end(key, "ended")
    }
    if (response.status === 401) return finish("unauthorized")
    if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
      const body = (await response.json().catch(() => ({}))) as { code?: string; message?: string }
      streams.delete(key)
      return events.refused(key, {
        status: response.status,
        code: body.code ?? "http_error",
        message: body.message ?? `the gateway answered ${response.status}`
      })
    }
    if (!response.ok || response.body === null || !response.headers.get("content-type")?.startsWith("text/event-stream")) {
      return finish(established ? "dropped" : "failed")
    }
    const parser = new SseParser()
    const decoder = new TextDecoder()
    let tokenExpired = false
    const emit = (name: string, data: string) => {
      if (streams.get(key) !== abort) return
      if (name === "resync") events.resync(key, JSON.parse(data) as Resync)
      else if (name === "token_expired") tokenExpired = true
      else if (!notEvents.has(name)) events.event(key, JSON.parse(data) as TaskEvent)
    }
    for (const reader = response.body.getReader();;) {
      const { done: ended, value } = await reader.read()
      if (abort.signal.aborted) return
      if (ended) break
      if (!established) {
        established = true
        events.established()
      }
      parser.push(decoder.decode(value, { stream: true }), emit)
    }
    // Ended by the gateway without a terminal event (the link removes a task once it ended).
    if (streams.get(key) === abort) finish(tokenExpired ? "token_expired" : "dropped")
  }

  return {
    transport: "sse",
    add: (subscription) => {
      if (done) return
      streams.get(subscription.key)?.abort()
      const abort = new AbortController()
      streams.set(subscription.key, abort)
      read(subscription, abort).catch(() => {
        if (!abort.signal.aborted) finish(established ? "dropped" : "failed")
      })
    },
    remove: (key) => {
      streams.get(key)?.abort()
      streams.delete(key)
    },
    close: () => {
      done = true
      for (const abort of streams.values()) abort.abort()
      streams.clear()
    }
  }
}
